"""hypothesis strategies and settings profiles for the decoder's property tests.

Profiles are registered here rather than in ``conftest.py`` (owned by another part of the
suite) and applied per test with ``@SETTINGS``. ``HYPOTHESIS_PROFILE`` picks one:

* ``default`` / ``ci``: a moderate number of examples, so the suite runs in seconds;
* ``long``: thousands of examples, for a run before a release or after touching the decoder.
"""

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from p1mqtt.protocol import CATALOGUE, ValueKind, crc16_arc, format_timestamp, lookup
from telegrams import COMPOSED, fixture, fixture_names

__all__ = [
    "BRUSSELS",
    "SETTINGS",
    "VALID_TELEGRAMS",
    "GeneratedObject",
    "as_utc",
    "chunked",
    "generated_objects",
    "header_texts",
    "noise",
    "object_lines",
    "p1_moments",
    "streams",
    "valid_telegrams",
]

_EXAMPLES = {"default": 50, "ci": 50, "long": 2000}
for _name, _count in _EXAMPLES.items():
    settings.register_profile(
        f"p1mqtt-{_name}",
        max_examples=_count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
SETTINGS = settings.get_profile(f"p1mqtt-{_PROFILE if _PROFILE in _EXAMPLES else 'default'}")
"""Settings for every property test (apply as a decorator)."""

BRUSSELS = ZoneInfo("Europe/Brussels")


def _crc_valid() -> list[bytes]:
    candidates = [fixture(name) for name in fixture_names()] + list(COMPOSED.values())
    valid = []
    for data in candidates:
        start = data.find(b"/")
        bang = data.rfind(b"\n!")
        crc = data[bang + 2 :].strip()
        if crc and start >= 0 and crc16_arc(data[start : bang + 2]) == int(crc, 16):
            valid.append(data[start:])
    return valid


VALID_TELEGRAMS: list[bytes] = _crc_valid()
"""Every project telegram with a correct CRC, from its ``/`` on."""


def valid_telegrams() -> st.SearchStrategy[bytes]:
    """One of the project's CRC-valid telegrams."""
    return st.sampled_from(VALID_TELEGRAMS)


def noise() -> st.SearchStrategy[bytes]:
    """Bytes between telegrams: random bytes, and pieces that look like telegram syntax."""
    pieces = st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [b"/", b"!", b"\r\n", b"\n", b"\r\n!", b"!1234\r\n", b"(", b")", b"1-0:1.8.1(", b"/X"]
        ),
    )
    return st.lists(pieces, max_size=8).map(b"".join)


def streams() -> st.SearchStrategy[bytes]:
    """A stream of telegrams, cut telegrams and noise in any order."""
    telegram = valid_telegrams()
    cut = st.tuples(valid_telegrams(), st.integers(min_value=1)).map(
        lambda pair: pair[0][: pair[1] % len(pair[0])]
    )
    return st.lists(st.one_of(telegram, cut, noise()), min_size=1, max_size=6).map(b"".join)


def chunked(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """``data`` split at arbitrary points (empty chunks included)."""
    return st.lists(st.integers(min_value=0, max_value=len(data)), max_size=30).map(
        lambda cuts: [
            data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)
        ]
    )


# --- generated objects for encode -> decode round trips ---------------------------------------

_NUMBER_CODES = sorted(
    code
    for code, definition in CATALOGUE.items()
    if definition.kind is ValueKind.NUMBER and not definition.is_mbus
)
_UNITS = ["kWh", "kW", "V", "A", "m3", "kvarh", "kvar", "Hz", "s", "GJ", "Wh", "kVA"]


def p1_moments() -> st.SearchStrategy[datetime]:
    """Aware moments in Brussels, to the second, that a P1 timestamp can name (2001-2069)."""
    return st.datetimes(
        min_value=datetime(2001, 1, 1),
        max_value=datetime(2069, 12, 31),
        timezones=st.just(BRUSSELS),
        allow_imaginary=False,
    ).map(lambda moment: moment.replace(microsecond=0))


def _unknown_codes() -> st.SearchStrategy[str]:
    code = st.builds(
        "{}-{}:{}.{}.{}".format,
        st.sampled_from([1, 7]),
        st.integers(0, 9),
        st.integers(100, 255),
        st.integers(0, 255),
        st.integers(0, 255),
    )
    return code.filter(lambda text: lookup(text) is None)


_DECIMALS = st.from_regex(r"\A-?[0-9]{1,9}(\.[0-9]{1,4})?\Z")


@dataclass(frozen=True)
class GeneratedObject:
    """A data line and what decoding it must give."""

    line: str
    obis: str
    value: Decimal | str | datetime | None
    unit: str | None = None
    timestamp: datetime | None = None
    raw: str | None = None


@st.composite
def _number_object(draw: st.DrawFn) -> GeneratedObject:
    code = draw(st.one_of(st.sampled_from(_NUMBER_CODES), _unknown_codes()))
    text = draw(_DECIMALS)
    unit = draw(st.one_of(st.none(), st.sampled_from(_UNITS)))
    body = text if unit is None else f"{text}*{unit}"
    return GeneratedObject(f"{code}({body})", code, Decimal(text), unit)


@st.composite
def _captured_object(draw: st.DrawFn) -> GeneratedObject:
    code = draw(st.one_of(st.sampled_from(["1-0:1.6.0", "1-0:2.6.0"]), _unknown_codes()))
    moment = draw(p1_moments())
    text = draw(_DECIMALS)
    unit = draw(st.sampled_from(_UNITS))
    line = f"{code}({format_timestamp(moment)})({text}*{unit})"
    return GeneratedObject(line, code, Decimal(text), unit, moment)


@st.composite
def _clock_object(draw: st.DrawFn) -> GeneratedObject:
    moment = draw(p1_moments())
    return GeneratedObject(f"0-0:1.0.0({format_timestamp(moment)})", "0-0:1.0.0", moment)


@st.composite
def _text_object(draw: st.DrawFn) -> GeneratedObject:
    code = draw(st.sampled_from(["0-0:96.13.0", "0-0:96.1.1", "0-0:96.1.2", "0-0:42.0.0"]))
    text = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
    raw = text.encode("ascii").hex().upper()
    return GeneratedObject(f"{code}({raw})", code, text.strip(" "), raw=raw)


def generated_objects() -> st.SearchStrategy[list[GeneratedObject]]:
    """Objects with distinct OBIS codes: numbers with units, captured values, the clock, text."""
    one = st.one_of(_number_object(), _captured_object(), _clock_object(), _text_object())
    return st.lists(one, max_size=25, unique_by=lambda generated: generated.obis)


_GROUP_TEXT = st.text(alphabet="0123456789SW.*,-: ()kWhAVm3\u00b2\u00b3\u00b9\u00b5", max_size=20)
_GROUP_SHAPES = st.sampled_from(
    [
        "632525252525W",
        "35255255255255255S",
        "000101000000W",
        "700101010000W",
        "251026023000S",
        "260112223000",
        "1-0:1.6.0",
        "0-0:96.7.19",
        "0-0:0.1.0",
        "00.000*kW",
        "65.0*A,-65.0*A",
        "0",
        "13",
        "",
        "\u00b2",
    ]
)


def object_lines() -> st.SearchStrategy[str]:
    """Lines for known (and unknown) codes with any groups: right, wrong or corrupted layouts."""
    by_kind = {
        kind: sorted(
            code.replace("0-n:", "0-1:")
            for code, definition in CATALOGUE.items()
            if definition.kind is kind
        )
        for kind in ValueKind
    }
    known = st.sampled_from([codes for codes in by_kind.values() if codes]).flatmap(st.sampled_from)
    code = st.one_of(known, _unknown_codes())
    digits = st.text(alphabet="0123456789\u00b2\u00b3\u00b9", min_size=1, max_size=3)
    group = st.one_of(_GROUP_TEXT, _GROUP_SHAPES, digits, p1_moments().map(format_timestamp))
    return st.builds(
        lambda obis, groups: obis + "".join(f"({text})" for text in groups),
        code,
        st.lists(group, min_size=1, max_size=8),
    )


def header_texts() -> st.SearchStrategy[str]:
    """Identification lines as meters send them (no ``/``, no line break)."""
    return st.from_regex(r"\A[A-Z][A-Za-z]{2}5[A-Za-z0-9\\_ .=-]{0,24}[A-Za-z0-9_]\Z")


def as_utc(moment: datetime | None) -> datetime | None:
    """The same instant in UTC (aware datetimes in a repeated hour only compare right in UTC)."""
    return None if moment is None else moment.astimezone(UTC)
