"""P1 timestamps (``YYMMDDhhmmssX``) to timezone-aware datetimes, and back.

``X`` is ``S`` while summer time (DST) is active and ``W`` when it is not (DSMR 5.0.2 §6.4).
The letter is what makes the repeated autumn hour unambiguous: ``02:30:00S`` and ``02:30:00W``
on the last Sunday of October are an hour apart. Timestamps without the letter (some Iskra
meters, DSMR 2.2) are read in the configured zone, taking the first occurrence of a repeated
local time.

Meters also send placeholders that are not dates: ``632525252525W`` (Sagemcom), the 18-character
``35255255255255255S`` (Landis+Gyr), ``000101000000W``/``700101010000W`` and the like (Dutch
meters for an empty M-Bus channel). They all become ``None``: "no timestamp", not an error.
"""

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from p1mqtt.errors import UsageError

__all__ = ["TimestampParser", "format_timestamp", "is_timestamp_shaped"]

# Dates that meters use to mean "never": 2000-01-01 and 1970-01-01 (written 70 -> 2070).
_PLACEHOLDER_DATES = frozenset({"000101", "700101"})
_ONE_HOUR = timedelta(hours=1)


def is_timestamp_shaped(text: str) -> bool:
    """Whether ``text`` has the shape of a P1 timestamp: 12 digits and ``S``/``W``."""
    return len(text) == 13 and text[12] in "SW" and text[:12].isdigit()


class TimestampParser:
    """Turns P1 timestamp strings into aware datetimes in one time zone.

    Results are memoised per instance (a telegram repeats the same capture times every second),
    in a dictionary that is emptied when it reaches ``cache_size`` entries.
    """

    __slots__ = ("_cache", "_cache_size", "zone")

    def __init__(self, zone: tzinfo | str = "Europe/Brussels", cache_size: int = 256) -> None:
        if isinstance(zone, str):
            try:
                zone = ZoneInfo(zone)
            except (ValueError, OSError, ZoneInfoNotFoundError) as error:  # OSError: a directory
                raise UsageError(f"unknown time zone {zone!r}") from error
        self.zone: tzinfo = zone
        self._cache: dict[str, datetime | None] = {}
        self._cache_size = cache_size

    def parse(self, text: str) -> datetime | None:
        """Return the moment ``text`` denotes, or ``None`` for a placeholder or malformed text."""
        cache = self._cache
        try:
            return cache[text]
        except KeyError:
            pass
        result = self._parse(text)
        if len(cache) >= self._cache_size:
            cache.clear()
        cache[text] = result
        return result

    def _parse(self, text: str) -> datetime | None:
        length = len(text)
        if length == 13:
            letter = text[12]
            if letter not in "SW":
                return None
        elif length == 12:
            letter = ""
        else:
            return None
        digits = text[:12]
        if not digits.isdigit() or not digits.isascii() or digits[:6] in _PLACEHOLDER_DATES:
            return None
        try:
            local = datetime(
                2000 + int(digits[0:2]),
                int(digits[2:4]),
                int(digits[4:6]),
                int(digits[6:8]),
                int(digits[8:10]),
                int(digits[10:12]),
                tzinfo=self.zone,
            )
        except ValueError:
            return None
        if not letter:
            return local
        summer = letter == "S"
        if bool(local.dst()) == summer:
            return local
        other = local.replace(fold=1)
        if bool(other.dst()) == summer:
            return other
        # The letter contradicts the zone (a zone without DST, or a meter clock set wrongly):
        # trust the meter's letter relative to the zone's standard offset.
        offset = local.utcoffset()
        dst = local.dst()
        if offset is None or dst is None:
            return local
        standard = offset - dst
        fixed = timezone(standard + _ONE_HOUR if summer else standard)
        return local.replace(tzinfo=fixed)


def format_timestamp(moment: datetime, zone: tzinfo | None = None) -> str:
    """Format an aware datetime as a P1 timestamp in ``zone`` (default: its own zone)."""
    if moment.tzinfo is None:
        raise ValueError("format_timestamp needs an aware datetime")
    local = moment.astimezone(zone) if zone is not None else moment
    letter = "S" if local.dst() else "W"
    return local.strftime("%y%m%d%H%M%S") + letter
