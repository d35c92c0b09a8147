"""The decoder as a stream machine: chunking, garbage, framing, CRC, bounds and misuse."""

import pytest

from p1mqtt.errors import UsageError
from p1mqtt.protocol import (
    DEFAULT_MAX_TELEGRAM_SIZE,
    BytesDiscarded,
    Decoder,
    FrameRejected,
    RejectReason,
    TelegramDecoded,
    encode_telegram,
)
from telegrams import (
    COMPOSED,
    decode_events,
    decode_one,
    decoded,
    fixture,
    project_telegrams,
    rejected,
    with_crc,
)

PROJECT = project_telegrams()
GARBAGE = b"\x00\xff noise \r\n!1234\r\n(1-0:1.8.1)\r\n\x1b[0m"


def _result(events: list) -> tuple[list, list]:
    """Telegrams and rejection reasons: what must not depend on chunking or noise."""
    return decoded(events), [event.reason for event in rejected(events)]


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_fixture_whole_bytewise_and_in_garbage(name: str) -> None:
    """Every project telegram decodes the same fed whole, byte by byte and wrapped in garbage."""
    data = PROJECT[name]
    whole = _result(decode_events(data))
    assert _result(decode_events(data, chunk_size=1)) == whole
    noisy = GARBAGE + data + GARBAGE + data + GARBAGE
    telegrams, reasons = _result(decode_events(noisy, chunk_size=7))
    assert telegrams == whole[0] * 2
    assert reasons == whole[1] * 2


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_fixture_json_identical_bytewise(name: str) -> None:
    """Byte-by-byte decoding gives the same raw bytes and the same objects, line for line."""
    data = PROJECT[name]
    for one, other in zip(
        decoded(decode_events(data)), decoded(decode_events(data, chunk_size=1)), strict=True
    ):
        assert one.raw == other.raw
        assert list(one.objects.items()) == list(other.objects.items())


def test_garbage_before_telegram_is_reported_discarded() -> None:
    """Bytes before the first '/' become one BytesDiscarded with their count and offset."""
    events = decode_events(fixture("be_fluvius_t211_50213_leading_garbage_byte"))
    assert events[0] == BytesDiscarded(1, 0)
    assert isinstance(events[1], TelegramDecoded)
    assert events[1].offset == 1
    assert len(events) == 2


def test_garbage_after_telegram_is_reported_discarded() -> None:
    """Bytes after the CRC line and before the next '/' are discarded, never an error."""
    data = COMPOSED["crc_lower_case"]
    events = decode_events(data + b"xyz")
    assert isinstance(events[0], TelegramDecoded)
    assert events[1:] == [BytesDiscarded(3, len(data))]


def test_offsets_count_from_stream_start() -> None:
    """Each event's offset is the byte position of its frame's '/' in the whole stream."""
    first = COMPOSED["crc_one_digit"]
    second = COMPOSED["crc_two_digits"]
    events = decode_events(b"ab" + first + second, chunk_size=5)
    offsets = [event.offset for event in events if isinstance(event, TelegramDecoded)]
    assert offsets == [2, 2 + len(first)]


def test_truncated_frame_is_incomplete_then_next_decodes() -> None:
    """A new '/' mid-telegram rejects the cut frame as INCOMPLETE; the next one still decodes."""
    cut = COMPOSED["be_t211_full"][:300]
    whole = COMPOSED["be_dst_autumn"]
    events = decode_events(cut + whole)
    assert isinstance(events[0], FrameRejected)
    assert events[0].reason is RejectReason.INCOMPLETE
    assert (events[0].offset, events[0].size, events[0].frame) == (0, 300, cut)
    assert isinstance(events[1], TelegramDecoded)
    assert events[1].offset == 300
    assert len(events) == 2


def test_close_reports_unfinished_telegram() -> None:
    """close() turns a half-received telegram into INCOMPLETE, then the decoder is empty."""
    data = COMPOSED["be_two_gas"]
    decoder = Decoder()
    assert decoder.feed(data[:-10]) == []
    assert decoder.buffered == len(data) - 10
    events = decoder.close()
    assert len(events) == 1
    assert isinstance(events[0], FrameRejected)
    assert events[0].reason is RejectReason.INCOMPLETE
    assert events[0].size == len(data) - 10
    assert decoder.buffered == 0
    assert decoder.close() == []


def test_close_after_complete_telegram_reports_nothing() -> None:
    """close() after whole telegrams and trailing noise returns no event."""
    decoder = Decoder()
    decoder.feed(COMPOSED["be_two_gas"] + b"noise")
    assert decoder.close() == []


def test_decoder_continues_after_close() -> None:
    """A decoder can be fed again after close(): offsets continue from the bytes seen so far."""
    data = COMPOSED["be_dst_autumn"]
    decoder = Decoder()
    decoder.feed(data[:50])
    decoder.close()
    events = decoder.feed(data)
    assert len(events) == 1
    assert isinstance(events[0], TelegramDecoded)
    assert events[0].offset == 50


def test_crc_line_cut_by_next_telegram_is_malformed() -> None:
    """A CRC line interrupted by the next '/' is rejected as MALFORMED and the next decodes."""
    data = COMPOSED["be_dst_autumn"]
    events = decode_events(data[:-4] + data)
    assert [type(event) for event in events] == [FrameRejected, TelegramDecoded]
    assert events[0].reason is RejectReason.MALFORMED


def test_buffer_overflow_is_too_long_and_bounded() -> None:
    """A frame longer than max_telegram_size is TOO_LONG; the buffer never exceeds the bound."""
    big = COMPOSED["be_t211_full"]
    small = COMPOSED["be_dst_autumn"]
    decoder = Decoder(max_telegram_size=256)
    events = []
    for byte in big + small:
        events += decoder.feed(bytes([byte]))
        assert decoder.buffered <= 256
    events += decoder.close()
    reasons = [event.reason for event in rejected(events)]
    assert reasons[0] is RejectReason.TOO_LONG
    assert all(reason is RejectReason.TOO_LONG for reason in reasons)
    assert rejected(events)[0].offset == 0
    assert rejected(events)[0].frame == b""
    assert len(decoded(events)) == 1
    assert decoded(events)[0].raw == small


def test_buffer_bound_holds_for_one_big_chunk() -> None:
    """Feeding more than max_telegram_size at once still leaves at most the bound buffered."""
    decoder = Decoder(max_telegram_size=64)
    events = decoder.feed(b"/" + b"A" * 1000)
    assert decoder.buffered <= 64
    assert {event.reason for event in events if isinstance(event, FrameRejected)} == {
        RejectReason.TOO_LONG
    }


def test_telegram_of_exactly_max_size_decodes() -> None:
    """A telegram exactly max_telegram_size bytes long decodes; one byte less of room rejects."""
    data = COMPOSED["be_dst_autumn"]
    assert len(decoded(decode_events(data, max_telegram_size=len(data)))) == 1
    events = decode_events(data, max_telegram_size=len(data) - 1)
    assert not decoded(events)
    assert rejected(events)[0].reason is RejectReason.TOO_LONG


def test_default_bound_fits_a_full_text_message() -> None:
    """The default bound holds a telegram with a 1024-character text message (2048 hex)."""
    lines = ["0-0:96.1.4(50217)", "0-0:96.13.0(" + "41" * 1024 + ")"]
    data = encode_telegram("FLU5\\253769484_A", lines)
    assert len(data) < DEFAULT_MAX_TELEGRAM_SIZE
    assert decode_one(data)["0-0:96.13.0"].value == "A" * 1024


@pytest.mark.parametrize("value", ["text", 42, None, ["/"], 1.5])
def test_feed_rejects_non_bytes(value: object) -> None:
    """feed() with anything but bytes-like data raises UsageError (a programming error)."""
    with pytest.raises(UsageError, match="bytes"):
        Decoder().feed(value)  # type: ignore[arg-type]


def test_feed_accepts_bytearray_and_memoryview() -> None:
    """bytearray and memoryview chunks decode like bytes."""
    data = COMPOSED["be_dst_autumn"]
    assert len(decoded(Decoder().feed(bytearray(data)))) == 1
    assert len(decoded(Decoder().feed(memoryview(data)))) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [({"max_telegram_size": 63}, "max_telegram_size"), ({"cache_size": -1}, "cache_size")],
)
def test_constructor_rejects_bad_options(options: dict, message: str) -> None:
    """Impossible decoder options raise UsageError naming the option."""
    with pytest.raises(UsageError, match=message):
        Decoder(**options)


@pytest.mark.parametrize("zone", ["Europe/Nowhere", "../etc/passwd", ""])
def test_unknown_zone_name_raises_usage_error(zone: str) -> None:
    """A time zone name that does not exist is a UsageError at construction, not per telegram."""
    with pytest.raises(UsageError, match="time zone"):
        Decoder(zone)


def test_cache_disabled_gives_same_telegrams() -> None:
    """With cache_size=0 the decoder returns the same telegrams as with its memo."""
    stream = b"".join(PROJECT.values())
    assert decoded(decode_events(stream, cache_size=0)) == decoded(decode_events(stream))


def test_repeated_telegrams_share_unchanged_objects_but_not_changed_ones() -> None:
    """A line that repeats gives an equal object; a changed line gives its new value."""
    first = encode_telegram("ABC5X", ["1-0:1.8.1(000001.000*kWh)", "1-0:32.7.0(230.0*V)"])
    second = encode_telegram("ABC5X", ["1-0:1.8.1(000001.001*kWh)", "1-0:32.7.0(230.0*V)"])
    telegrams = decoded(decode_events(first + second + first))
    assert [str(t["1-0:1.8.1"].value) for t in telegrams] == ["1.000", "1.001", "1.000"]
    assert telegrams[0]["1-0:32.7.0"] == telegrams[1]["1-0:32.7.0"]


# --- CRC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["crc_one_digit", "crc_two_digits", "crc_three_digits", "crc_lower_case"]
)
def test_short_and_lower_case_crc_accepted(name: str) -> None:
    """A CRC of 1-4 hex digits in either case is compared numerically and accepted."""
    data = COMPOSED[name]
    stated = data[data.rfind(b"!") + 1 :].strip()
    telegram = decode_one(data)
    assert telegram.crc == int(stated, 16)


def test_lower_case_crc_from_real_source() -> None:
    """The real fixture with '!438b' decodes."""
    assert decode_one(fixture("be_fluvius_t211_50217_water_ch1_gas_ch2")).crc == 0x438B


def test_no_crc_means_crc_none() -> None:
    """A DSMR 2.2 telegram ending in a bare '!' decodes with crc None."""
    assert decode_one(fixture("nl_iskra_mt382_dsmr22_no_crc")).crc is None


def test_bad_crc_rejects_whole_telegram_with_reason() -> None:
    """A wrong CRC rejects the whole telegram: CRC_MISMATCH, both CRCs named, nothing decoded."""
    data = COMPOSED["be_dst_autumn"]
    stated = data[data.rfind(b"!") + 1 : -2]
    wrong = f"{(int(stated, 16) + 1) % 0x10000:04X}".encode()
    events = decode_events(data.replace(b"!" + stated, b"!" + wrong))
    assert len(events) == 1
    assert isinstance(events[0], FrameRejected)
    assert events[0].reason is RejectReason.CRC_MISMATCH
    assert wrong.decode() in events[0].message
    assert stated.decode() in events[0].message
    assert events[0].size == len(data)


def test_mismatching_real_fixture_rejected() -> None:
    """A published telegram whose CRC was computed over different bytes is rejected."""
    events = decode_events(fixture("ie_iskra_mie5t"))
    assert [event.reason for event in rejected(events)] == [RejectReason.CRC_MISMATCH]
    assert "AD3B" in rejected(events)[0].message
    assert "F2A8" in rejected(events)[0].message


def test_changed_value_with_old_crc_rejected() -> None:
    """Editing one digit of a value while keeping the CRC is caught."""
    data = COMPOSED["be_two_gas"].replace(b"01234.567", b"01234.568")
    assert [event.reason for event in rejected(decode_events(data))] == [RejectReason.CRC_MISMATCH]


@pytest.mark.parametrize("crc_line", [b"!12345\r\n", b"!XYZ1\r\n", b"!12 4\r\n", b"!-1\r\n"])
def test_malformed_crc_line_rejected(crc_line: bytes) -> None:
    """A CRC line that is not 0-4 hex digits is MALFORMED, and says what it saw."""
    body = COMPOSED["be_dst_autumn"]
    data = body[: body.rfind(b"!")] + crc_line
    events = decode_events(data)
    assert [event.reason for event in rejected(events)] == [RejectReason.MALFORMED]
    assert "CRC line" in rejected(events)[0].message


def test_crc_line_with_bare_lf_accepted() -> None:
    """A CRC line ended by LF alone is read like one ended by CR LF."""
    assert decode_one(COMPOSED["lf_only"]).value("1-0:1.8.1") is not None


def test_without_blank_line_after_header_decodes() -> None:
    """The e-MUCS 2.1.1 layout (no blank line after the header) decodes with its objects."""
    telegram = decode_one(COMPOSED["no_blank_line"])
    assert list(telegram.objects) == ["0-0:96.1.4", "0-0:1.0.0", "1-0:1.8.2"]
    assert telegram.unparsed == ()


def test_with_crc_helper_refuses_impossible_width() -> None:
    """The test helper refuses to write a CRC in fewer digits than it needs."""
    with pytest.raises(ValueError, match="does not fit"):
        with_crc("/ABC5X\r\n\r\n1-0:1.8.1(000001.000*kWh)\r\n!", digits=0)
