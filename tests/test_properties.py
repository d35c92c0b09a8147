"""Properties of the decoder that must hold for every input (hypothesis)."""

import json
from datetime import datetime

from hypothesis import assume, example, given
from hypothesis import strategies as st

from p1mqtt.protocol import (
    BytesDiscarded,
    Decoder,
    FrameRejected,
    Telegram,
    TelegramDecoded,
    TelegramJsonEncoder,
    crc16_arc,
    encode_telegram,
)
from strategies import (
    SETTINGS,
    VALID_TELEGRAMS,
    GeneratedObject,
    as_utc,
    chunked,
    generated_objects,
    header_texts,
    noise,
    object_lines,
    streams,
    valid_telegrams,
)
from telegrams import COMPOSED, decode_events, decoded, fixture, with_crc


def _run(chunks: list[bytes], **options: object) -> tuple[list, list, int]:
    """Decode ``chunks``: telegrams with offsets, rejections, and the total bytes discarded."""
    decoder = Decoder(**options)  # type: ignore[arg-type]
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    telegrams = [(e.telegram, e.offset) for e in events if isinstance(e, TelegramDecoded)]
    rejections = [
        (e.reason, e.offset, e.size, e.frame) for e in events if isinstance(e, FrameRejected)
    ]
    discarded = sum(e.count for e in events if isinstance(e, BytesDiscarded))
    return telegrams, rejections, discarded


@SETTINGS
@given(
    data=st.lists(st.one_of(st.binary(max_size=200), noise(), valid_telegrams()), max_size=8),
    size=st.integers(min_value=64, max_value=2048),
    chunk=st.integers(min_value=1, max_value=300),
)
def test_arbitrary_bytes_never_raise_and_stay_bounded(
    data: list[bytes], size: int, chunk: int
) -> None:
    """Any bytes in any chunks: no exception, and never more than max_telegram_size buffered."""
    stream = b"".join(data)
    decoder = Decoder(max_telegram_size=size)
    total = 0
    for start in range(0, len(stream), chunk):
        for event in decoder.feed(stream[start : start + chunk]):
            total += event.size if isinstance(event, FrameRejected) else 0
        assert decoder.buffered <= size
    decoder.close()
    assert decoder.buffered == 0


@SETTINGS
@given(st.data())
def test_chunking_never_changes_the_result(data: st.DataObject) -> None:
    """Any split of a stream gives the same telegrams, rejections and discarded byte count."""
    stream = data.draw(streams())
    size = data.draw(st.sampled_from([64, 300, 1024, 16 * 1024]))
    chunks = data.draw(chunked(stream))
    assert _run(chunks, max_telegram_size=size) == _run([stream], max_telegram_size=size)


@SETTINGS
@given(st.data())
def test_framing_then_decoding_later_equals_feeding(data: st.DataObject) -> None:
    """The bridge frames in its reader and decodes in its processor, all frames of a stream
    before any is decoded at worst: the events are those of feed() and close()."""
    stream = data.draw(streams())
    chunks = data.draw(chunked(stream))
    decoder = Decoder(max_telegram_size=1024)
    framed = [decoder.frames(chunk) for chunk in chunks] + [decoder.end_frames()]
    events = [event for batch in framed for event in decoder.decode(batch)]
    reference = Decoder(max_telegram_size=1024)
    expected = [event for chunk in chunks for event in reference.feed(chunk)] + reference.close()
    assert events == expected


@SETTINGS
@given(stream=streams())
def test_every_byte_is_accounted_for(stream: bytes) -> None:
    """Decoded, rejected and discarded bytes add up to the whole stream (nothing vanishes)."""
    telegrams, rejections, discarded = _run([stream])
    used = sum(len(telegram.raw) for telegram, _ in telegrams)
    used += sum(size for _, _, size, _ in rejections)
    assert used + discarded == len(stream)


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def _crc_case_flip(data: bytes, bit: int) -> bool:
    """Whether ``bit`` only changes the case of a hex letter in the CRC (same CRC value)."""
    index = bit // 8
    return index > data.rfind(b"!") and bit % 8 == 5 and chr(data[index]).lower() in "abcdef"


def _check_flip(data: bytes, bit: int) -> None:
    telegrams = decoded(decode_events(_flip(data, bit)))
    if _crc_case_flip(data, bit):
        assert [telegram.raw for telegram in telegrams] == [_flip(data, bit)]
    else:
        assert telegrams == [], f"bit {bit} (byte {bit // 8}) flipped and still decoded"


@SETTINGS
@given(data=st.data())
def test_single_bit_flip_never_decodes(data: st.DataObject) -> None:
    """Any one-bit flip of a CRC'd telegram decodes nothing (a CRC letter's case aside)."""
    telegram = data.draw(st.sampled_from(VALID_TELEGRAMS))
    bit = data.draw(st.integers(min_value=0, max_value=len(telegram) * 8 - 1))
    _check_flip(telegram, bit)


def test_every_single_bit_flip_of_small_telegrams() -> None:
    """Exhaustively: no single-bit flip of two whole telegrams is accepted."""
    for data in (fixture("be_fluvius_t211_50213_no_mbus_2020"), COMPOSED["crc_lower_case"]):
        for bit in range(len(data) * 8):
            _check_flip(data, bit)


def _check_round_trip(header: str, objects: list[GeneratedObject], telegram: Telegram) -> None:
    assert telegram.header == header
    assert list(telegram.objects) == [generated.obis for generated in objects]
    assert telegram.unparsed == ()
    for generated in objects:
        obj = telegram[generated.obis]
        if isinstance(generated.value, datetime):
            assert as_utc(obj.value) == as_utc(generated.value)  # type: ignore[arg-type]
            assert as_utc(obj.timestamp) == as_utc(generated.value)
        else:
            assert obj.value == generated.value
            assert type(obj.value) is type(generated.value)
            assert str(obj.value) == str(generated.value)
            assert as_utc(obj.timestamp) == as_utc(generated.timestamp)
        assert obj.unit == generated.unit
        assert obj.raw == generated.raw


@SETTINGS
@given(header=header_texts(), objects=generated_objects())
def test_encode_decode_round_trip(header: str, objects: list[GeneratedObject]) -> None:
    """Objects encoded with encode_telegram decode to the same codes, values, units and times."""
    data = encode_telegram(header, [generated.line for generated in objects])
    (telegram,) = decoded(decode_events(data))
    _check_round_trip(header, objects, telegram)
    TelegramJsonEncoder().encode(telegram)


@SETTINGS
@given(header=header_texts(), objects=generated_objects(), chunk=st.integers(1, 64))
def test_round_trip_survives_chunking_and_no_crc(
    header: str, objects: list[GeneratedObject], chunk: int
) -> None:
    """The round trip holds fed in small chunks and for telegrams without CRC (DSMR 2.2 style)."""
    assume(objects)
    data = encode_telegram(header, [generated.line for generated in objects], with_crc=False)
    (telegram,) = decoded(decode_events(data, chunk_size=chunk))
    assert telegram.crc is None
    _check_round_trip(header, objects, telegram)


@SETTINGS
@given(st.binary(max_size=300))
def test_garbage_lines_inside_a_telegram_never_raise(junk: bytes) -> None:
    """A CRC-valid telegram containing arbitrary bytes as a line decodes or rejects, no raise."""
    body = junk.replace(b"/", b"").replace(b"\n!", b"\n?")
    text = b"/ABC5TEST\r\n\r\n1-0:1.8.1(000001.000*kWh)\r\n" + body + b"\r\n!"
    data = text + f"{crc16_arc(text):04X}\r\n".encode()
    events = decode_events(data)
    assert all(
        isinstance(event, TelegramDecoded | FrameRejected | BytesDiscarded) for event in events
    )


@SETTINGS
@given(lines=st.lists(object_lines(), max_size=12), crc=st.booleans())
@example(lines=["0-0:98.1.0(\u00b2)(1-0:1.6.0)(1-0:1.6.0)(1)"], crc=True)
@example(lines=["1-0:99.97.0(\u00b9)(0-0:96.7.19)(\u00b2)(1)"], crc=False)
def test_any_groups_on_any_code_never_raise(lines: list[str], crc: bool) -> None:
    """Known codes with any group layout (wrong counts, corrupted digits) decode without raising."""
    text = "/ABC5TEST\r\n\r\n" + "".join(line + "\r\n" for line in lines) + "!"
    data = with_crc(text) if crc else text.encode("latin-1") + b"\r\n"
    (telegram,) = decoded(decode_events(data))
    assert len(telegram.objects) + len(telegram.unparsed) == len(lines)
    json.loads(TelegramJsonEncoder().encode(telegram))
