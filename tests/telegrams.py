"""Telegrams for the tests: the saved fixtures and telegrams composed here from the spec.

The composed telegrams are written from the facts in P1_PROTOCOL.md (layouts, placeholder
values, quirks seen on real meters) with values made up for the tests; they are built with
:func:`p1mqtt.protocol.encode_telegram` so their CRCs are right. ``COMPOSED`` maps a name to the
bytes; ``project_telegrams()`` gives the saved fixtures and the composed ones together.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from p1mqtt.protocol import (
    Decoder,
    Event,
    FrameRejected,
    Telegram,
    TelegramDecoded,
    crc16_arc,
    encode_telegram,
)

__all__ = [
    "COMPOSED",
    "FIXTURES",
    "FLUVIUS_3PH",
    "decode_events",
    "decode_one",
    "decoded",
    "expected_outcome",
    "fixture",
    "fixture_names",
    "hex_text",
    "outcome",
    "project_telegrams",
    "read_summary_table",
    "rejected",
    "with_crc",
]

FIXTURES = Path(__file__).parent / "fixtures" / "telegrams"
FLUVIUS_3PH = "FLU5\\253769484_A"
FLUVIUS_1PH = "FLU5\\253770234_A"


def fixture(name: str) -> bytes:
    """The exact bytes of a saved fixture (``name`` with or without ``.txt``)."""
    if not name.endswith(".txt"):
        name += ".txt"
    return (FIXTURES / name).read_bytes()


def fixture_names() -> list[str]:
    """Every saved fixture file name, sorted."""
    return sorted(path.name for path in FIXTURES.glob("*.txt"))


def hex_text(text: str) -> str:
    """``text`` as a P1 octet string: upper-case hex of its ASCII bytes."""
    return text.encode("ascii").hex().upper()


def with_crc(text: str, *, digits: int = 4, lower: bool = False) -> bytes:
    """Complete ``text`` (``/`` through ``!``, CR LF included) with its CRC line.

    ``digits`` < 4 writes the CRC unpadded (only possible when it is small enough).
    """
    if not text.endswith("!"):
        raise ValueError("text must end with '!'")
    body = text.encode("latin-1")
    crc = crc16_arc(body)
    if crc >= 16**digits:
        raise ValueError(f"CRC {crc:04X} does not fit in {digits} digits")
    shown = f"{crc:0{digits}X}"
    return body + (shown.lower() if lower else shown).encode("ascii") + b"\r\n"


def _text(header: str, lines: list[str], *, blank_line: bool = True) -> str:
    return "/" + header + "\r\n" + ("\r\n" if blank_line else "") + "\r\n".join(lines) + "\r\n!"


# --- the building blocks -------------------------------------------------------------------

# 13 months of peaks, oldest first as real Sagemcom and L+G meters send them; the period TST
# is 00:00 on the 1st of the month after the one covered.
_PEAKS_13 = [
    ("240201000000W", "240115183000W", "04.128"),
    ("240301000000W", "240212073000W", "03.986"),
    ("240401000000S", "240318190000W", "03.512"),
    ("240501000000S", "240409201500S", "03.044"),
    ("240601000000S", "240523000000S", "03.701"),
    ("240701000000S", "240612214500S", "03.297"),
    ("240801000000S", "240724220000S", "03.090"),
    ("240901000000S", "240830221500S", "03.378"),
    ("241001000000S", "240924210000S", "03.649"),
    ("241101000000W", "241003201500S", "04.113"),
    ("241201000000W", "241121233000W", "04.428"),
    ("250101000000W", "241227191500W", "07.211"),
    ("250201000000W", "250114081500W", "05.494"),
]


def _history(entries: list[tuple[str, str, str]]) -> str:
    groups = "".join(f"({period})({moment})({value}*kW)" for period, moment, value in entries)
    return f"0-0:98.1.0({len(entries)})(1-0:1.6.0)(1-0:1.6.0){groups or '()'}"


TEXT_MESSAGE = "Onderbreking gepland op 20/01 tussen 9u en 12u"


def be_t211_full() -> bytes:
    """Belgian 3-phase T211, e-MUCS 2.1: 13-month peak history, gas and water, a text message."""
    lines = [
        "0-0:96.1.4(50221)",
        "1-0:94.32.1(400)",
        f"0-0:96.1.1({hex_text('1SAG3100716957')})",
        f"0-0:96.1.2({hex_text('541440012345678900')})",
        "0-0:1.0.0(250214081512W)",
        "1-0:1.8.1(002601.234*kWh)",
        "1-0:1.8.2(003437.690*kWh)",
        "1-0:2.8.1(003902.111*kWh)",
        "1-0:2.8.2(001623.307*kWh)",
        "0-0:96.14.0(0002)",
        "1-0:1.4.0(01.250*kW)",
        "1-0:1.6.0(250207181500W)(04.987*kW)",
        _history(_PEAKS_13),
        "1-0:1.7.0(01.234*kW)",
        "1-0:2.7.0(00.000*kW)",
        "1-0:21.7.0(00.410*kW)",
        "1-0:41.7.0(00.512*kW)",
        "1-0:61.7.0(00.312*kW)",
        "1-0:22.7.0(00.000*kW)",
        "1-0:42.7.0(00.000*kW)",
        "1-0:62.7.0(00.000*kW)",
        "1-0:32.7.0(231.4*V)",
        "1-0:52.7.0(229.8*V)",
        "1-0:72.7.0(232.0*V)",
        "1-0:31.7.0(002.15*A)",
        "1-0:51.7.0(002.61*A)",
        "1-0:71.7.0(001.49*A)",
        "0-0:96.3.10(1)",
        "0-0:17.0.0(99.999*kW)",
        "1-0:31.4.0(999.99*A)",
        f"0-0:96.13.0({hex_text(TEXT_MESSAGE)})",
        "0-1:24.1.0(003)",
        f"0-1:96.1.1({hex_text('7FLO2123015189')})",
        f"0-1:96.1.2({hex_text('541440012345678917')})",
        "0-1:24.4.0(1)",
        "0-1:96.3.10(1)",
        "0-1:24.2.3(250214081005W)(04856.664*m3)",
        "0-2:24.1.0(007)",
        f"0-2:96.1.1({hex_text('8SET0000837964')})",
        "0-2:96.3.10(1)",
        "0-2:24.2.3(250214080958W)(00123.456*m3)",
    ]
    return encode_telegram(FLUVIUS_3PH, lines)


def be_s211_example() -> bytes:
    """Belgian 1-phase S211 (e-MUCS 1.7) with gas, water, a text message (the docs' example)."""
    lines = [
        "0-0:96.1.4(50217)",
        f"0-0:96.1.1({hex_text('1SAG1100042181')})",
        "0-0:1.0.0(250318201530W)",
        "1-0:1.8.1(001234.567*kWh)",
        "1-0:1.8.2(002345.678*kWh)",
        "1-0:2.8.1(000015.758*kWh)",
        "1-0:2.8.2(000000.000*kWh)",
        "0-0:96.14.0(0001)",
        "1-0:1.4.0(00.782*kW)",
        "1-0:1.6.0(250305181500W)(03.064*kW)",
        _history(
            [
                ("250201000000W", "632525252525W", "00.000"),
                ("250301000000W", "250217191500W", "04.229"),
            ]
        ),
        "1-0:1.7.0(00.338*kW)",
        "1-0:2.7.0(00.000*kW)",
        "1-0:32.7.0(232.9*V)",
        "1-0:31.7.0(001.52*A)",
        "0-0:96.3.10(1)",
        "0-0:17.0.0(999.9*kW)",
        "1-0:31.4.0(999*A)",
        f"0-0:96.13.0({hex_text('Hallo')})",
        "0-1:24.1.0(003)",
        f"0-1:96.1.1({hex_text('7FLO2119033733')})",
        "0-1:24.4.0(1)",
        "0-1:24.2.3(250318201002W)(00872.234*m3)",
        "0-2:24.1.0(007)",
        f"0-2:96.1.1({hex_text('8SET0000961173')})",
        "0-2:24.2.1(250318201511W)(00008.579*m3)",
    ]
    return encode_telegram(FLUVIUS_1PH, lines)


def be_lg_e660_peaks() -> bytes:
    """Landis+Gyr E660 for Fluvius (50250): 5-capture 98.1.0 with export peaks, and 98.1.1."""
    lines = [
        "0-0:96.1.4(50250)",
        f"0-0:96.1.1({hex_text('12345678')})",
        "0-0:1.0.0(250716100010S)",
        "1-0:1.8.0(0002720.76*kWh)",
        "1-0:2.8.0(0001155.91*kWh)",
        "1-0:1.7.0(00.000*kW)",
        "1-0:2.7.0(00.018*kW)",
        "1-0:3.7.0(00.000*kvar)",
        "1-0:4.7.0(00.056*kvar)",
        "1-0:5.8.0(0000012.77*kvarh)",
        "1-0:1.4.0(00.000*kW)",
        "1-0:2.4.0(00.000*kW)",
        "1-0:1.6.0(250708104500S)(01.430*kW)",
        "1-0:2.6.0(250713124500S)(01.577*kW)",
        "0-0:98.1.0(2)(0-0:0.1.0)(1-0:1.6.0)(1-0:1.6.0)(1-0:2.6.0)(1-0:2.6.0)"
        "(250601000000S)(14)(250512084500S)(01.211*kW)(250525130000S)(02.004*kW)"
        "(250701000000S)(15)(250604084500S)(01.452*kW)(250629150000S)(01.633*kW)",
        "0-0:98.1.1(1)(0-0:0.1.0)(1-0:1.8.0)(1-0:2.8.0)"
        "(250701000000S)(15)(0002631.00*kWh)(0001091.45*kWh)",
    ]
    return encode_telegram("LG_E660_Fluvius_3N400V", lines)


def be_dst_autumn() -> bytes:
    """A telegram from the repeated hour of 2025-10-26: the same wall clock with S and with W."""
    lines = [
        "0-0:96.1.4(50217)",
        "0-0:1.0.0(251026023000W)",
        "1-0:1.8.1(000100.000*kWh)",
        "1-0:1.6.0(251026023000S)(02.500*kW)",
        "0-1:24.1.0(003)",
        "0-1:24.2.3(251026021500W)(00100.000*m3)",
    ]
    return encode_telegram(FLUVIUS_3PH, lines)


def be_placeholders() -> bytes:
    """Every placeholder timestamp seen on meters, in captured objects and in the peak history."""
    lines = [
        "0-0:96.1.4(50221)",
        "0-0:1.0.0(251106081526W)",
        "1-0:1.6.0(35255255255255255S)(00.000*kW)",
        "0-0:98.1.0(3)(1-0:1.6.0)(1-0:1.6.0)"
        "(241001000000S)(35255255255255255S)(00.000*kW)"
        "(241101000000W)(632525252525W)(00.000*kW)"
        "(251101000000W)(251029004500W)(03.772*kW)",
        "0-1:24.1.0(003)",
        "0-1:24.4.0(0)",
        "0-1:24.2.3(632525252525W)(00000.000)",
        "0-2:24.1.0(007)",
        "0-2:24.2.1(700101010000W)(00000000)",
        "0-3:24.1.0(003)",
        "0-3:24.2.1(000101000000W)(00000.000*m3)",
    ]
    return encode_telegram(FLUVIUS_3PH, lines)


def be_iskra_wallonia() -> bytes:
    """Iskra IE5 as in Wallonia: hex version, value-first 1.6.0 without S/W, kVA limiter."""
    lines = [
        "0-0:96.1.4(3231313130)",
        f"0-0:96.1.1({hex_text('90773349')})",
        "0-0:1.0.0(260115201009)",
        "1-0:1.8.1(006898.658*kWh)",
        "1-0:1.8.2(010300.661*kWh)",
        "1-0:1.8.3(000000.000*kWh)",
        "1-0:1.8.4(000000.000*kWh)",
        "1-0:1.8.5(000000.000*kWh)",
        "1-0:2.8.1(005655.889*kWh)",
        "1-0:2.8.2(002424.329*kWh)",
        "0-0:96.14.0(0001)",
        "1-0:1.4.0(00.284*kW)",
        "1-0:1.6.0(08.832*kW)(260112223000)",
        "1-0:1.7.0(00.579*kW)",
        "1-0:32.7.0(145.3*V)",
        "0-0:17.0.0(999.9*kVA)",
        "1-0:31.4.0(999*A)",
        "0-1:96.3.10(0)",
        "0-0:96.13.0()",
    ]
    return encode_telegram("ISk5\\2MIE5T-200", lines)


def be_sibelga() -> bytes:
    """Sibelga (Brussels): blank version sent as hex spaces, two thresholds in one bracket pair."""
    lines = [
        f"0-0:96.1.1({hex_text('40018417SAGE')})",
        f"0-0:96.1.4({'20' * 48})",
        "0-0:1.0.0(250118084940W)",
        "1-0:1.8.1(006887.460*kWh)",
        "1-0:2.8.1(010718.750*kWh)",
        "0-0:96.14.0(0001)",
        "0-0:17.0.0(14.950*kVA)",
        "1-1:31.4.0(65.0*A,-65.0*A)",
    ]
    return encode_telegram("SIB5\\253691561_E", lines)


def lu_smarty() -> bytes:
    """Luxembourg Smarty plaintext: 42.0.0 name, totals, two threshold groups, gas on 24.2.1."""
    lines = [
        "1-3:0.2.8(42)",
        "0-0:1.0.0(260403175431S)",
        f"0-0:42.0.0({hex_text('SAG1030700012701')})",
        "1-0:1.8.0(000273.764*kWh)",
        "1-0:2.8.0(112743.030*kWh)",
        "1-0:3.8.0(000462.590*kvarh)",
        "0-0:17.0.0(027.6*kVA)",
        "1-1:31.4.0(040*A)(-040*A)",
        "0-0:96.7.21(01067)",
        "0-0:96.13.2()",
        "0-1:24.1.0(003)",
        f"0-1:96.1.0({hex_text('FLO182370120350')})",
        "0-1:24.2.1(260403174542S)(14239.771*m3)",
    ]
    return encode_telegram("Lux5\\253663629_D", lines)


def be_two_gas() -> bytes:
    """Two gas meters (a stale one on channel 2) and water on channel 3."""
    lines = [
        "0-0:96.1.4(50217)",
        "0-0:1.0.0(240105101530W)",
        "0-1:24.1.0(003)",
        "0-1:24.2.3(240105101002W)(01234.567*m3)",
        "0-2:24.1.0(003)",
        "0-2:24.2.3(240105100000W)(00000.000*m3)",
        "0-3:24.1.0(007)",
        "0-3:24.2.1(240105101511W)(00042.000*m3)",
        "0-4:96.3.10(0)",
    ]
    return encode_telegram(FLUVIUS_3PH, lines)


def unknown_and_unparsed() -> bytes:
    """Codes the catalogue does not know, a line that is no object and a repeated code."""
    lines = [
        "1-3:0.2.8(50)",
        "0-0:1.0.0(240105101530W)",
        "1-0:96.50.68(1234.5*kW)",
        "0-0:96.99.9(ABC)",
        "1-0:1.8.1(000001.000*kWh)",
        "this is not an object",
        "1-0:1.8.1(000002.000*kWh)",
    ]
    return encode_telegram("XMX5TEST", lines)


def nl_failure_log_empty_brackets() -> bytes:
    """A power failure log written as bare empty brackets ``1-0:99.97.0()``."""
    return encode_telegram("ISK5\\2M550T-1012", ["1-3:0.2.8(50)", "1-0:99.97.0()"])


def nl_failure_log_zero() -> bytes:
    """A power failure log with no entries in the DSMR 5 spec form ``(0)(0-0:96.7.19)``."""
    return encode_telegram("ISK5\\2M550T-1012", ["1-3:0.2.8(50)", "1-0:99.97.0(0)(0-0:96.7.19)"])


def no_blank_line() -> bytes:
    """The e-MUCS 2.1.1 example layout: no blank line after the header."""
    lines = ["0-0:96.1.4(50221)", "0-0:1.0.0(200512135409S)", "1-0:1.8.2(000015.758*kWh)"]
    return with_crc(_text(FLUVIUS_3PH, lines, blank_line=False))


def lf_only() -> bytes:
    """Lines ended by LF alone (a capture whose CR were stripped), CRC computed over that text."""
    text = "/KFM5KAIFA-METER\n\n1-3:0.2.8(42)\n1-0:1.8.1(001234.567*kWh)\n!"
    body = text.encode("ascii")
    return body + f"{crc16_arc(body):04X}\n".encode("ascii")


def _short_crc(digits: int, *, lower: bool = False) -> bytes:
    """A small telegram whose CRC fits ``digits`` hex digits, written unpadded."""
    for counter in range(1 << 20):
        text = _text("ABC5TEST", ["1-3:0.2.8(50)", f"1-0:1.8.1({counter:06d}.000*kWh)"])
        if crc16_arc(text.encode("ascii")) < 16**digits:
            return with_crc(text, digits=digits, lower=lower)
    raise AssertionError("no counter gives a short CRC")  # pragma: no cover


def crc_one_digit() -> bytes:
    """A CRC written as one hex digit."""
    return _short_crc(1)


def crc_two_digits() -> bytes:
    """A CRC written as two hex digits."""
    return _short_crc(2)


def crc_three_digits() -> bytes:
    """A CRC written as three hex digits (as a Dutch heat meter does: ``!B9F``)."""
    return _short_crc(3)


def crc_lower_case() -> bytes:
    """A CRC in lower-case hex digits with at least one letter."""
    for counter in range(1 << 16):
        text = _text("ABC5TEST", ["1-3:0.2.8(50)", f"1-0:1.8.1({counter:06d}.000*kWh)"])
        shown = f"{crc16_arc(text.encode('ascii')):04x}"
        if any(char in "abcdef" for char in shown):
            return with_crc(text, lower=True)
    raise AssertionError("no lower-case CRC found")  # pragma: no cover


BUILDERS: dict[str, Callable[[], bytes]] = {
    "be_t211_full": be_t211_full,
    "be_s211_example": be_s211_example,
    "be_lg_e660_peaks": be_lg_e660_peaks,
    "be_dst_autumn": be_dst_autumn,
    "be_placeholders": be_placeholders,
    "be_iskra_wallonia": be_iskra_wallonia,
    "be_sibelga": be_sibelga,
    "lu_smarty": lu_smarty,
    "be_two_gas": be_two_gas,
    "unknown_and_unparsed": unknown_and_unparsed,
    "nl_failure_log_empty_brackets": nl_failure_log_empty_brackets,
    "nl_failure_log_zero": nl_failure_log_zero,
    "no_blank_line": no_blank_line,
    "lf_only": lf_only,
    "crc_one_digit": crc_one_digit,
    "crc_two_digits": crc_two_digits,
    "crc_three_digits": crc_three_digits,
    "crc_lower_case": crc_lower_case,
}

COMPOSED: dict[str, bytes] = {name: build() for name, build in BUILDERS.items()}
"""Every composed telegram by name; all of them have a valid CRC."""


def project_telegrams() -> dict[str, bytes]:
    """Saved fixtures (by file name) and composed telegrams (by builder name)."""
    telegrams = {name: fixture(name) for name in fixture_names()}
    telegrams.update(COMPOSED)
    return telegrams


# --- decoding helpers ------------------------------------------------------------------------


def decode_events(data: bytes, chunk_size: int | None = None, **options: Any) -> list[Event]:
    """Every event of decoding ``data`` then closing, fed whole or in chunks of ``chunk_size``."""
    decoder = Decoder(**options)
    events: list[Event] = []
    if chunk_size is None:
        events += decoder.feed(data)
    else:
        for start in range(0, len(data), chunk_size):
            events += decoder.feed(data[start : start + chunk_size])
    return events + decoder.close()


def decoded(events: list[Event]) -> list[Telegram]:
    """The telegrams among ``events``."""
    return [event.telegram for event in events if isinstance(event, TelegramDecoded)]


def rejected(events: list[Event]) -> list[FrameRejected]:
    """The rejections among ``events``."""
    return [event for event in events if isinstance(event, FrameRejected)]


def decode_one(data: bytes, **options: Any) -> Telegram:
    """The single telegram in ``data``; fails the test if there is not exactly one."""
    telegrams = decoded(decode_events(data, **options))
    assert len(telegrams) == 1, f"expected one telegram, got {len(telegrams)}"
    return telegrams[0]


def read_summary_table(sources: Path) -> dict[str, str]:
    """File name -> CRC verdict, from the ``| `file` | ... | CRC |`` table of a SOURCES.md."""
    verdicts: dict[str, str] = {}
    for line in sources.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`") and cells[0].endswith(".txt`"):
            verdicts[cells[0].strip("`")] = cells[-1]
    return verdicts


def expected_outcome(verdict: str) -> str:
    """``valid``, ``no_crc`` or ``crc_mismatch`` from a SOURCES.md CRC cell."""
    if verdict.startswith("valid"):
        return "valid"
    if verdict.startswith("no CRC"):
        return "no_crc"
    if verdict.startswith("MISMATCH"):
        return "crc_mismatch"
    raise ValueError(f"unknown CRC verdict {verdict!r}")


def outcome(data: bytes) -> str:
    """What the decoder makes of ``data``: ``valid``, ``no_crc`` or a rejection reason."""
    events = decode_events(data)
    telegrams = decoded(events)
    if telegrams:
        assert len(telegrams) == 1
        assert not rejected(events)
        return "valid" if telegrams[0].crc is not None else "no_crc"
    reasons = [event.reason.value for event in rejected(events)]
    assert len(reasons) == 1, reasons
    return reasons[0]
