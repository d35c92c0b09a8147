"""Reading one logical data line (``OBIS(group)(group)...``) into a :class:`CosemObject`.

The catalogue says how each known code is laid out; where a line does not fit that layout
(meters deviate: Iskra sends ``1-0:1.6.0(08.832*kW)(260112223000)`` value-first) or the code is
unknown, the groups are read by their shape: a timestamp-shaped group is the capture time, the
others are values.
"""

from collections.abc import Sequence
from datetime import datetime

from p1mqtt.protocol.catalogue import CATALOGUE, ObisDefinition, ValueKind, lookup
from p1mqtt.protocol.model import CosemObject, ProfileEntry, Reading, Scalar
from p1mqtt.protocol.timestamps import TimestampParser
from p1mqtt.protocol.values import (
    decode_octet_string,
    is_obis_shaped,
    parse_number,
    split_unit,
)

__all__ = ["ObjectParser"]


def _is_time_like(text: str) -> bool:
    """Shape of a timestamp or of a meter's timestamp placeholder (12, 13, 17 or 18 characters).

    The Landis+Gyr placeholder ``35255255255255255S`` is 17 digits and the letter: 18 characters.
    """
    length = len(text)
    if length == 13:
        return text[12] in "SW" and text[:12].isdigit()
    if length == 12:
        return text.isdigit()
    if length in (17, 18):
        return text[-1] in "SW" and text[:-1].isdigit()
    return False


class ObjectParser:
    """Parses data lines into objects; results are memoised per line text.

    Most lines of a telegram repeat unchanged from one second to the next (identifiers,
    thresholds, the 13-month peak history), so the memo turns them into dictionary look-ups.
    It is emptied when it reaches ``cache_size`` entries, so memory stays bounded.
    """

    __slots__ = ("_cache", "_cache_size", "_times")

    def __init__(self, times: TimestampParser, cache_size: int = 512) -> None:
        self._times = times
        self._cache: dict[str, CosemObject | None] = {}
        self._cache_size = cache_size

    def parse(self, line: str) -> CosemObject | None:
        """Parse one logical line; ``None`` when it is not an OBIS object line."""
        cache = self._cache
        try:
            return cache[line]
        except KeyError:
            pass
        result = self._parse(line)
        if self._cache_size:
            if len(cache) >= self._cache_size:
                cache.clear()
            cache[line] = result
        return result

    def _parse(self, line: str) -> CosemObject | None:
        opening = line.find("(")
        if opening <= 0 or line[-1] != ")":
            return None
        obis = line[:opening]
        inner = line[opening + 1 : -1]
        definition = CATALOGUE.get(obis)
        if (
            definition is not None
            and definition.kind is ValueKind.NUMBER
            and "(" not in inner
            and ")" not in inner
            and "," not in inner
        ):
            # Fast path for the plain registers that change every second.
            text, star, unit = inner.partition("*")
            number = parse_number(text)
            if number is not None:
                return CosemObject(obis, number, unit if star else None, definition=definition)
        groups = inner.split(")(")
        if inner.count("(") + inner.count(")") != 2 * (len(groups) - 1):
            return None
        definition = lookup(obis)
        if definition is None and not is_obis_shaped(obis):
            return None
        kind = definition.kind if definition is not None else None
        parsed: CosemObject | None = None
        if kind is ValueKind.NUMBER:
            parsed = self._number(obis, groups, definition)
        elif kind is ValueKind.INTEGER:
            parsed = self._integer(obis, groups, definition)
        elif kind is ValueKind.OCTET_STRING:
            parsed = self._octets(obis, groups, definition)
        elif kind is ValueKind.TEXT:
            parsed = self._text(obis, groups, definition)
        elif kind is ValueKind.PROFILE:
            parsed = self._profile(obis, groups, definition)
        elif kind is ValueKind.LEGACY_MBUS:
            parsed = self._legacy_mbus(obis, groups, definition)
        # TIMESTAMP and CAPTURED objects, and every layout the catalogue did not foresee, are
        # read by the shape of their groups.
        if parsed is None:
            parsed = self._by_shape(obis, groups, definition)
        if obis[2] in "1234" and obis.startswith("0-") and obis[3:4] == ":":
            parsed = parsed._replace(channel=int(obis[2]))
        return parsed

    # --- one method per layout -------------------------------------------------------------

    def _number(
        self, obis: str, groups: list[str], definition: ObisDefinition | None
    ) -> CosemObject | None:
        if len(groups) != 1 or "," in groups[0]:
            return None
        text, unit = split_unit(groups[0])
        number = parse_number(text)
        if number is None:
            return None
        return CosemObject(obis, number, unit, definition=definition)

    def _integer(
        self, obis: str, groups: list[str], definition: ObisDefinition | None
    ) -> CosemObject | None:
        if len(groups) != 1:
            return None
        text, unit = split_unit(groups[0])
        if not text.isdigit() or not text.isascii():
            return None
        return CosemObject(obis, int(text), unit, definition=definition)

    def _octets(
        self, obis: str, groups: list[str], definition: ObisDefinition | None
    ) -> CosemObject | None:
        if len(groups) != 1:
            return None
        raw = groups[0]
        text = decode_octet_string(raw)
        return CosemObject(obis, raw if text is None else text, raw=raw, definition=definition)

    def _text(
        self, obis: str, groups: list[str], definition: ObisDefinition | None
    ) -> CosemObject | None:
        if len(groups) != 1:
            return None
        raw = groups[0]
        # Short version strings are plain ("50217", "42"); some meters send them hex-encoded
        # ("3231313130" is "21110") or as hex spaces.
        if len(raw) > 5:
            text = decode_octet_string(raw)
            if text is not None:
                return CosemObject(obis, text, raw=raw, definition=definition)
        return CosemObject(obis, raw, definition=definition)

    def _legacy_mbus(
        self, obis: str, groups: list[str], definition: ObisDefinition | None
    ) -> CosemObject | None:
        # 0-n:24.3.0(TST)(status)(period)(count)(0-n:24.2.1)(unit) then (value) on the next line
        if len(groups) < 7 or not is_obis_shaped(groups[4]):
            return None
        number = parse_number(groups[-1])
        if number is None:
            return None
        timestamp = self._times.parse(groups[0])
        return CosemObject(obis, number, groups[5] or None, timestamp, True, definition=definition)

    def _profile(
        self, obis: str, groups: list[str], definition: ObisDefinition | None
    ) -> CosemObject | None:
        count_text = groups[0]
        unit = definition.unit if definition is not None else None
        if len(groups) == 1 and count_text == "":
            return CosemObject(obis, 0, unit, entries=(), definition=definition)
        if not (count_text.isdigit() and count_text.isascii()):
            # E.ON Hungary: 0-0:98.1.0(TST)(value)(value)... without count and capture list.
            entry = self._entry(groups)
            return CosemObject(obis, 1, entry.unit, entries=(entry,), definition=definition)
        count = int(count_text)
        first_entry = 1
        while first_entry < len(groups) and is_obis_shaped(groups[first_entry]):
            first_entry += 1
        rest = groups[first_entry:]
        if count == 0:
            if rest and rest != [""]:
                return None
            return CosemObject(obis, 0, unit, entries=(), definition=definition)
        if not rest or len(rest) % count:
            return None
        width = len(rest) // count
        entries = tuple(self._entry(rest[i : i + width]) for i in range(0, len(rest), width))
        entry_unit = next((entry.unit for entry in entries if entry.unit), unit)
        return CosemObject(obis, count, entry_unit, entries=entries, definition=definition)

    def _entry(self, groups: Sequence[str]) -> ProfileEntry:
        """One profile entry: ``[period end] [billing counter] (time)(value) ...``."""
        parse_time = self._times.parse
        index = 0
        period_end: datetime | None = None
        if len(groups) >= 3 and _is_time_like(groups[0]):
            second = groups[1]
            if _is_time_like(second):
                period_end, index = parse_time(groups[0]), 1
            elif second.isdigit() and len(second) < 12:
                period_end, index = parse_time(groups[0]), 2
        readings: list[Reading] = []
        while index < len(groups):
            group = groups[index]
            timestamp: datetime | None = None
            if _is_time_like(group) and index + 1 < len(groups):
                timestamp = parse_time(group)
                index += 1
                group = groups[index]
            value, unit = self._scalar(group)
            readings.append(Reading(value, unit, timestamp))
            index += 1
        if not readings:
            return ProfileEntry(None, None, period_end=period_end)
        first = readings[0]
        return ProfileEntry(
            first.timestamp, first.value, first.unit, period_end, tuple(readings[1:])
        )

    def _by_shape(
        self, obis: str, groups: list[str], definition: ObisDefinition | None
    ) -> CosemObject:
        timestamp: datetime | None = None
        has_timestamp = False
        readings: list[Reading] = []
        for group in groups:
            if (
                not has_timestamp
                and _is_time_like(group)
                and (len(group) != 12 or len(groups) > 1 or _expects_time(definition))
            ):
                timestamp = self._times.parse(group)
                has_timestamp = True
                continue
            for part in group.split(",") if "," in group else (group,):
                value, unit = self._scalar(part)
                readings.append(Reading(value, unit))
        if not readings:
            # The timestamp is the value (0-0:1.0.0).
            return CosemObject(
                obis, timestamp, None, timestamp, has_timestamp, definition=definition
            )
        first = readings[0]
        extra = tuple(readings) if len(readings) > 1 else ()
        return CosemObject(
            obis,
            first.value,
            first.unit,
            timestamp,
            has_timestamp,
            values=extra,
            definition=definition,
        )

    @staticmethod
    def _scalar(group: str) -> tuple[Scalar, str | None]:
        text, unit = split_unit(group)
        if text == "":
            return None, unit
        number = parse_number(text)
        return (text if number is None else number), unit


def _expects_time(definition: ObisDefinition | None) -> bool:
    return definition is not None and definition.kind is ValueKind.TIMESTAMP
