"""Differential test against ``dsmr_parser`` 1.11.2 (the parser Home Assistant uses).

Every CRC-valid project telegram (and, when present, every CRC-valid telegram of the shared
corpus) is decoded by both. Each line ``dsmr_parser`` reads with the telegram specification that
fits the meter is compared with our object for the same OBIS code: value, unit and timestamps
(as instants: dsmr_parser returns UTC, we return Brussels time). Wherever they disagree, the
disagreement must be one of the deliberate differences in ``DIFFERENCES`` (each checks the
exact shape of the difference, not just the field), and every listed difference must actually
occur on the project telegrams, so the table can neither hide a new discrepancy nor go stale.

Not differences, so not listed: tariff registers are compared by OBIS code, so the Belgian
day/night meaning of tariff 1/2 (a naming question) cannot differ; both parsers keep the
98.1.0 entries in telegram order (newest first in the e-MUCS 1.7.1 example, oldest first on
real meters); a repeated autumn hour agrees once both sides are compared as UTC instants.
"""

import copy
import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dsmr_parser import telegram_specifications
from dsmr_parser.exceptions import ParseError
from dsmr_parser.objects import CosemObject as DsmrCosem
from dsmr_parser.objects import MBusObject, MBusObjectPeak, ProfileGenericObject

from p1mqtt.protocol import CATALOGUE, CosemObject, Telegram, ValueKind, lookup
from telegrams import decode_events, decoded, project_telegrams

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "telegrams"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")  # dsmr_parser's zone; same rules as Brussels
PLACEHOLDER_DATES = {"000101", "700101"}
NOT_COMPARED = {"lf_only"}  # dsmr_parser's line patterns need CR LF


# --- what dsmr_parser makes of a telegram ---------------------------------------------------


def spec_name(telegram: Telegram) -> str:
    """The dsmr_parser specification for this meter, as a user of dsmr_parser would pick it."""
    header = telegram.header
    if telegram.crc is None:
        return "V2_2"
    if "0-0:96.1.4" in telegram:
        return "BELGIUM_FLUVIUS"
    if header.startswith("Lux"):
        return "LUXEMBOURG_SMARTY"
    if header.startswith("EST5"):
        return "SAGEMCOM_T210_D_R"
    if header.startswith("SAG5"):
        return "EON_HUNGARY"
    if header.startswith("KAM5"):
        return "SWEDEN"
    if header.startswith("ISk5\\2MIE5T"):
        return "ISKRA_IE"
    return "V4" if telegram.value("1-3:0.2.8") in ("40", "42") else "V5"


def dsmr_objects(telegram: Telegram) -> dict[str, tuple[str, Any]]:
    """OBIS code -> (line, dsmr_parser's object or the exception it raised), first match wins."""
    spec = copy.deepcopy(getattr(telegram_specifications, spec_name(telegram)))
    text = telegram.raw.decode("latin-1")
    found: dict[str, tuple[str, Any]] = {}
    for entry in spec["objects"]:
        pattern = re.compile(entry["obis_reference"], re.DOTALL | re.MULTILINE)
        for line in pattern.findall(text):
            obis = line[: line.index("(")]
            try:
                result: Any = entry["value_parser"].parse(line)
            except (ParseError, ArithmeticError, ValueError) as error:
                result = error
            found.setdefault(obis, (line.strip(), result))
    return found


# --- facts: one compared field ------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One field of one object as each parser reads it."""

    obis: str
    field: str
    ours: Any
    theirs: Any
    line: str

    @property
    def code(self) -> str:
        """The catalogue form of the code (``0-n:`` for M-Bus channels)."""
        definition = lookup(self.obis)
        return definition.code if definition is not None else self.obis


def _utc(moment: Any) -> Any:
    return moment.astimezone(UTC) if isinstance(moment, datetime) else moment


def agree(fact: Fact) -> bool:
    """Whether both parsers read the field the same (moments compared as instants)."""
    return (_utc(fact.ours) == _utc(fact.theirs) and type(fact.ours) is type(fact.theirs)) or (
        isinstance(fact.ours, Decimal | int)
        and isinstance(fact.theirs, Decimal | int)
        and not isinstance(fact.ours, bool)
        and fact.ours == fact.theirs
    )


def facts(obis: str, ours: CosemObject | None, line: str, theirs: Any) -> list[Fact]:
    """The fields to compare between our object and dsmr_parser's for one line."""

    def fact(field: str, mine: Any, other: Any) -> Fact:
        return Fact(obis, field, mine, other, line)

    if ours is None:
        return [fact("object", None, theirs)]
    if isinstance(theirs, Exception):
        return [fact("decode", ours, theirs)]
    if isinstance(theirs, DsmrCosem):
        if isinstance(theirs.value, datetime) or ours.has_timestamp:
            return [fact("timestamp", ours.timestamp, theirs.value)]
        return [fact("value", ours.value, theirs.value), fact("unit", ours.unit, theirs.unit)]
    if isinstance(theirs, MBusObject):
        return [
            fact("timestamp", ours.timestamp, theirs.datetime),
            fact("value", ours.value, theirs.value),
            fact("unit", ours.unit, theirs.unit),
        ]
    entries = ours.entries or ()
    if isinstance(theirs, list):  # 98.1.0 peak history: MBusObjectPeak per month
        found = [fact("entries", len(entries), len(theirs))]
        for index, (entry, peak) in enumerate(zip(entries, theirs, strict=False)):
            assert isinstance(peak, MBusObjectPeak)
            found += [
                fact(f"entries[{index}].period_end", entry.period_end, peak.datetime),
                fact(f"entries[{index}].timestamp", entry.timestamp, peak.occurred),
                fact(f"entries[{index}].value", entry.value, peak.value),
                fact(f"entries[{index}].unit", entry.unit, peak.unit),
            ]
        return found
    assert isinstance(theirs, ProfileGenericObject), type(theirs)
    found = [fact("value", ours.value, theirs.buffer_length)]
    for index, (entry, event) in enumerate(zip(entries, theirs.buffer, strict=False)):
        found += [
            fact(f"entries[{index}].timestamp", entry.timestamp, event.datetime),
            fact(f"entries[{index}].value", entry.value, event.value),
            fact(f"entries[{index}].unit", entry.unit, event.unit),
        ]
    return found


# --- the deliberate differences --------------------------------------------------------------


def _wall_clock(moment: datetime) -> str:
    return moment.astimezone(AMSTERDAM).strftime("%y%m%d%H%M%S")


def _hex_text(fact: Fact) -> bool:
    sent = fact.theirs or ""
    if not isinstance(fact.ours, str) or f"({sent})" not in fact.line:
        return False
    try:
        text = bytes.fromhex(sent).decode("ascii").strip(" \x00")
    except ValueError:
        return False
    return fact.ours == text and fact.field == "value"


def _integer_code(fact: Fact) -> bool:
    return (
        fact.field == "value"
        and isinstance(fact.ours, int)
        and isinstance(fact.theirs, str)
        and fact.theirs.isdigit()
        and int(fact.theirs) == fact.ours
    )


def _placeholder_time(fact: Fact) -> bool:
    if fact.ours is not None or not isinstance(fact.theirs, datetime):
        return False
    sent = _wall_clock(fact.theirs)
    return sent[:6] in PLACEHOLDER_DATES and f"({sent}" in fact.line


def _contradicting_letter(fact: Fact) -> bool:
    if not (isinstance(fact.ours, datetime) and isinstance(fact.theirs, datetime)):
        return False
    sent = _wall_clock(fact.theirs)
    for letter, shift in (("S", timedelta(hours=-1)), ("W", timedelta(hours=1))):
        local = fact.theirs.astimezone(AMSTERDAM)
        in_summer = bool(local.dst())
        if (
            f"({sent}{letter})" in fact.line
            and in_summer == (letter == "W")
            and _utc(fact.ours) == _utc(fact.theirs) + shift
        ):
            return True
    return False


_VALUE_FIRST = re.compile(r"\((?P<value>[0-9.]+)\*(?P<unit>\w+)\)\((?P<moment>[0-9]{12})\)$")


def _value_first_peak(fact: Fact) -> bool:
    shape = _VALUE_FIRST.search(fact.line)
    if shape is None:
        return False
    if fact.field == "value":
        return fact.ours == Decimal(shape["value"]) and fact.theirs == Decimal(shape["moment"])
    if fact.field == "unit":
        return fact.ours == shape["unit"] and fact.theirs is None
    if fact.field == "timestamp":
        return (
            fact.theirs is None
            and isinstance(fact.ours, datetime)
            and _wall_clock(fact.ours) == shape["moment"]
        )
    return False


def _five_capture_history(fact: Fact) -> bool:
    return (
        fact.field == "decode"
        and isinstance(fact.theirs, decimal.InvalidOperation)
        and "(0-0:0.1.0)" in fact.line
    )


def _comma_in_brackets(fact: Fact) -> bool:
    return (
        fact.field == "decode"
        and isinstance(fact.theirs, ParseError)
        and re.search(r"\([^()]*,[^()]*\)", fact.line) is not None
        and len(fact.ours.values) == fact.line.count(",") + 1
    )


@dataclass(frozen=True)
class Difference:
    """A known, deliberate disagreement: where it may occur, why, and its exact shape."""

    name: str
    codes: frozenset[str]
    reason: str
    matches: Callable[[Fact], bool]


_TEXT_CODES = frozenset(
    code
    for code, definition in CATALOGUE.items()
    if definition.kind in (ValueKind.OCTET_STRING, ValueKind.TEXT)
)
_TIMED_CODES = frozenset(
    {"0-0:1.0.0", "1-0:1.6.0", "0-0:98.1.0", "1-0:99.97.0", "0-n:24.2.1", "0-n:24.2.3"}
)

DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "hex octet strings decoded",
        _TEXT_CODES,
        "Octet strings are sent as hex; we give the text (hex kept in 'raw'), dsmr_parser the "
        "hex, and None instead of '' for an empty one. Includes Iskra's hex version 3231313130.",
        _hex_text,
    ),
    Difference(
        "integer codes as int",
        frozenset({"0-0:96.14.0", "0-0:96.3.10", "0-n:24.1.0", "0-n:24.4.0"}),
        "Tariff indicator 0001, breaker, valve and device type are integer codes (DSMR I1/S4 "
        "enums); dsmr_parser keeps the text in some specifications.",
        _integer_code,
    ),
    Difference(
        "placeholder timestamps are None",
        _TIMED_CODES,
        "000101000000W (2000-01-01) and 700101010000W (1970-01-01, read as such by strptime) "
        "mean 'no time' on meters; dsmr_parser returns them as real dates.",
        _placeholder_time,
    ),
    Difference(
        "S/W letter trusted over the calendar",
        _TIMED_CODES,
        "When the DST letter contradicts the date (S in March in the e-MUCS 1.7.1 example) we "
        "follow the letter; dsmr_parser ignores it outside the repeated autumn hour.",
        _contradicting_letter,
    ),
    Difference(
        "value-first month peak",
        frozenset({"1-0:1.6.0"}),
        "Iskra sends 1-0:1.6.0(08.832*kW)(260112223000); dsmr_parser assumes (TST)(value) and "
        "reads the time as the value and no time; we read the groups by their shape.",
        _value_first_peak,
    ),
    Difference(
        "five-capture peak history",
        frozenset({"0-0:98.1.0"}),
        "The L+G E660 98.1.0 has 5 capture objects (billing counter, import and export peaks); "
        "dsmr_parser assumes 3 per entry and raises decimal.InvalidOperation.",
        _five_capture_history,
    ),
    Difference(
        "two values in one bracket pair",
        frozenset({"1-1:31.4.0", "1-0:31.4.0"}),
        "Sibelga sends 1-1:31.4.0(65.0*A,-65.0*A); dsmr_parser's group pattern has no comma and "
        "rejects the line; we give both values.",
        _comma_in_brackets,
    ),
)


def explain(fact: Fact) -> list[str]:
    """Names of the differences that account for ``fact``."""
    return [d.name for d in DIFFERENCES if fact.code in d.codes and d.matches(fact)]


# --- running the comparison -------------------------------------------------------------------


@dataclass
class Comparison:
    """The outcome of comparing a set of telegrams."""

    agreed: int = 0
    used: dict[str, int] = field(default_factory=dict)
    unexplained: list[tuple[str, Fact]] = field(default_factory=list)
    ambiguous: list[tuple[str, Fact, list[str]]] = field(default_factory=list)
    per_telegram: dict[str, int] = field(default_factory=dict)


def compare(telegrams: dict[str, bytes]) -> Comparison:
    """Compare every telegram we decode (CRC valid, or none) with dsmr_parser."""
    result = Comparison()
    for name, data in telegrams.items():
        found = decoded(decode_events(data))
        if not found:
            continue
        telegram = found[0]
        theirs = dsmr_objects(telegram)
        result.per_telegram[name] = len(theirs)
        for obis, (line, other) in theirs.items():
            for fact in facts(obis, telegram.get(obis), line, other):
                if agree(fact):
                    result.agreed += 1
                    continue
                names = explain(fact)
                if not names:
                    result.unexplained.append((name, fact))
                elif len(names) > 1:
                    result.ambiguous.append((name, fact, names))
                else:
                    result.used[names[0]] = result.used.get(names[0], 0) + 1
    return result


PROJECT = compare(project_telegrams())


def test_project_telegrams_agree_except_listed_differences() -> None:
    """Where both decode an object, values, units and times agree or differ as listed."""
    assert PROJECT.unexplained == []
    assert PROJECT.ambiguous == []
    assert PROJECT.agreed > 1000


def test_every_listed_difference_occurs() -> None:
    """Each difference in the table occurs on the project telegrams (the table is not stale)."""
    assert sorted(PROJECT.used) == sorted(d.name for d in DIFFERENCES)


def test_dsmr_parser_reads_every_project_telegram() -> None:
    """The comparison is not vacuous: dsmr_parser reads objects from every CRLF telegram."""
    empty = {name for name, count in PROJECT.per_telegram.items() if count == 0}
    assert empty == NOT_COMPARED
    assert len(PROJECT.per_telegram) >= 35


def test_differences_have_reasons_and_codes() -> None:
    """Every difference names the codes it may touch and says why it is deliberate."""
    assert len({d.name for d in DIFFERENCES}) == len(DIFFERENCES)
    for difference in DIFFERENCES:
        assert difference.codes
        assert len(difference.reason) > 40


def test_placeholder_difference_is_exact() -> None:
    """The placeholder rule accepts a 2000-01-01 placeholder but not a real date mismatch."""
    moment = datetime(2000, 1, 1, tzinfo=AMSTERDAM)
    line = "0-1:24.2.1(000101000000W)(00000000)"
    assert explain(Fact("0-1:24.2.1", "timestamp", None, moment, line)) == [
        "placeholder timestamps are None"
    ]
    real = datetime(2021, 1, 1, tzinfo=AMSTERDAM)
    assert explain(Fact("0-1:24.2.1", "timestamp", None, real, line)) == []
    assert explain(Fact("1-0:1.8.1", "timestamp", None, moment, line)) == []


@pytest.mark.corpus
def test_shared_corpus_agrees_except_listed_differences() -> None:
    """The same holds for every CRC-valid telegram of the shared corpus, when present."""
    if not CORPUS.is_dir():
        pytest.skip(f"reference corpus not found at {CORPUS}")
    files = {path.name: path.read_bytes() for path in sorted(CORPUS.glob("*.txt"))}
    corpus = compare(files)
    assert corpus.unexplained == []
    assert corpus.ambiguous == []
    assert corpus.agreed > 1000
