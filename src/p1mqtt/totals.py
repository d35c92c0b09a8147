"""Energy, gas and water used today, this month and this year, from the meter's own registers.

A total is the register now minus the register at the start of the period. Periods start at
local midnight (of the day, of the 1st of the month, of 1 January) in a configurable zone, so
days of 23 and 25 hours are counted as they are. The time is the meter's (``0-0:1.0.0``), never
the computer's clock.

The baselines are kept in a small JSON file in the data directory, written atomically (temporary
file + ``os.replace``), at a period change or a meter replacement at once and otherwise at most
once a minute of real time, so an SD card is not worn out. ``flush()`` writes it at shutdown.
"""

import contextlib
import json
import logging
import math
import os
import re
import tempfile
import time as clocks
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from p1mqtt.capacity import exact_json
from p1mqtt.protocol import Telegram

__all__ = [
    "PERIODS",
    "PeriodTotals",
    "Totals",
    "TotalsTracker",
    "local_midnight",
    "period_starts",
    "select_registers",
]

_log = logging.getLogger(__name__)

PERIODS = ("day", "month", "year")
"""The periods totals are kept for, in the order of :func:`period_starts`."""

_STATE_VERSION = 1
_ZERO = Decimal(0)
_TARIFF = re.compile(r"energy_(import|export)_tariff_\d+")
_TOTAL = re.compile(r"energy_(import|export)_total")
_VOLUME = re.compile(r"(gas|water)(_\d+)?_volume")
_SUMS = {"import": "energy_import", "export": "energy_export"}
_ONE_DAY = timedelta(days=1)
_NO_SPAN = (math.inf, -math.inf)


# --- pure period logic -------------------------------------------------------------------------


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The first moment of ``day`` in ``zone`` (00:00, or the first valid time after a gap)."""
    wall = datetime(day.year, day.month, day.day, tzinfo=zone)
    # A round trip through UTC moves a midnight that a DST change skips to the real instant.
    return wall.astimezone(UTC).astimezone(zone)


def period_starts(moment: datetime, zone: tzinfo) -> tuple[datetime, datetime, datetime]:
    """The starts of the day, month and year holding ``moment``, as local midnights in ``zone``."""
    if moment.tzinfo is None:
        raise ValueError("period_starts needs an aware datetime")
    today = moment.astimezone(zone).date()
    return (
        local_midnight(today, zone),
        local_midnight(today.replace(day=1), zone),
        local_midnight(date(today.year, 1, 1), zone),
    )


def _is_register_key(key: str) -> bool:
    return bool(_TARIFF.fullmatch(key) or _TOTAL.fullmatch(key) or _VOLUME.fullmatch(key))


_REGISTER_KEYS: dict[str, bool] = {}
"""Which keys name a register: every telegram has the same few dozen keys, so each is matched
against the patterns once (up to ``_REGISTER_KEYS_MAX``, so odd input cannot grow it)."""
_REGISTER_KEYS_MAX = 1024


def select_registers(telegram: Telegram) -> dict[str, tuple[Decimal, str | None]]:
    """The registers totals are kept for, by key: value and unit.

    Import and export per tariff (``energy_import_tariff_1`` ...), or the total registers
    (``energy_import_total``) for meters without tariff registers, and gas and water volumes.
    A reading whose capture time is a placeholder (a dead M-Bus channel sends
    ``(632525252525W)(00000.000)``) is no reading and is left out.
    """
    found: dict[str, tuple[Decimal, str | None]] = {}
    known = _REGISTER_KEYS
    for key, obj in telegram.by_key():
        register = known.get(key)
        if register is None:
            register = _is_register_key(key)
            if len(known) < _REGISTER_KEYS_MAX:
                known[key] = register
        if not register:
            continue
        value = obj.value
        if not isinstance(value, Decimal) or not value.is_finite():
            continue
        if obj.has_timestamp and obj.timestamp is None:
            continue
        found[key] = (value, obj.unit)
    for direction in ("import", "export"):
        if any(key.startswith(f"energy_{direction}_tariff_") for key in found):
            found.pop(f"energy_{direction}_total", None)
    return found


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    """What was used in one period so far."""

    start: datetime
    """The period's first moment (a local midnight)."""
    partial: bool
    """True when p1mqtt did not see the whole period (it started after the period began, was
    stopped across its start, or a register was replaced), so the values count less."""
    values: Mapping[str, Decimal]
    """Per register key, plus ``energy_import``/``energy_export``: the sums over tariffs."""

    def to_dict(self) -> dict[str, object]:
        """The JSON object of this period."""
        return {"start": self.start, "partial": self.partial, "values": dict(self.values)}


@dataclass(frozen=True, slots=True)
class Totals:
    """Totals of one telegram (``<prefix>/totals``)."""

    time: datetime
    """The telegram's time (``0-0:1.0.0``)."""
    zone: str
    day: PeriodTotals
    month: PeriodTotals
    year: PeriodTotals
    units: Mapping[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The JSON fields, in order; decimals stay :class:`~decimal.Decimal`."""
        return {
            "time": self.time,
            "zone": self.zone,
            "day": self.day.to_dict(),
            "month": self.month.to_dict(),
            "year": self.year.to_dict(),
            "units": dict(self.units),
        }

    def to_json(self) -> str:
        """The ``<prefix>/totals`` payload: exact decimals as numbers, ISO times with offsets."""
        return exact_json(self.to_dict())


# --- the tracker -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Period:
    """Baselines of one running period."""

    start: datetime
    partial: bool
    base: dict[str, Decimal] = field(default_factory=dict)
    """Register value the period counts from."""
    carried: dict[str, Decimal] = field(default_factory=dict)
    """Amount counted before the register was last re-based (a meter replacement)."""

    def total(self, key: str, value: Decimal) -> Decimal:
        """What register ``key`` at ``value`` has counted in this period (never negative)."""
        counted = self.carried.get(key, _ZERO) + value - self.base.get(key, value)
        return max(counted, _ZERO)


def _zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


class TotalsTracker:
    """Keeps the day, month and year baselines of every register and computes the totals.

    ``state_file`` (``None``: nothing is kept across restarts) holds the baselines. ``zone``
    decides where days begin. ``max_gap``: when the telegrams before and after a period start
    are at most this far apart, the last reading before it is the new baseline and the period
    is complete; after a longer gap (p1mqtt stopped) the first reading is, and the period is
    marked partial. ``save_interval``: least time between two routine saves, on ``clock`` (seconds,
    monotonic): real time, so catching up on a backlog of telegrams writes no more often than a
    live meter does.
    """

    def __init__(
        self,
        state_file: Path | None,
        zone: tzinfo | str = "Europe/Brussels",
        *,
        max_gap: timedelta = timedelta(minutes=5),
        save_interval: timedelta = timedelta(minutes=1),
        clock: Callable[[], float] = clocks.monotonic,
    ) -> None:
        self._state_file = state_file
        self._zone: tzinfo = ZoneInfo(zone) if isinstance(zone, str) else zone
        self._max_gap = max_gap
        self._save_interval = save_interval.total_seconds()
        self._clock = clock
        self._periods: dict[str, _Period] = {}
        self._last: dict[str, Decimal] = {}
        self._units: dict[str, str | None] = {}
        self._last_time: datetime | None = None
        self._saved_clock: float | None = None
        self._day_span = _NO_SPAN
        """The running day's start and end (POSIX seconds): inside it, no period can start."""
        self._dirty = False
        self._load()

    @property
    def zone(self) -> tzinfo:
        """The zone whose midnights start the periods."""
        return self._zone

    def update(self, telegram: Telegram) -> Totals | None:
        """Take one telegram; return the totals, or ``None`` without a time or any register."""
        return self.current() if self.observe(telegram) else None

    def current(self) -> Totals | None:
        """The totals as of the last telegram taken, ``None`` before the first."""
        if self._last_time is None or not self._periods:
            return None
        return self._totals(self._last_time)

    def observe(self, telegram: Telegram) -> bool:
        """Take one telegram; False when it has no time or no register (then it is ignored).

        Cheaper than :meth:`update` when the totals are published less often than telegrams
        arrive: build them with :meth:`current` when needed.
        """
        time = telegram.timestamp
        if time is None:
            return False
        registers = select_registers(telegram)
        if not registers and not self._last:
            return False
        urgent = self._follow_replacements(registers)
        urgent |= self._roll_periods(time, registers)
        for key, (value, unit) in registers.items():
            self._last[key] = value
            self._units[key] = unit
        if self._last_time is None or _seconds(time, self._last_time) > 0:
            self._last_time = time
        self._dirty = True
        if (
            urgent
            or self._saved_clock is None
            or self._clock() - self._saved_clock >= self._save_interval
        ):
            self._save(time)
        return True

    def flush(self) -> None:
        """Write the state file now if anything changed since the last write (at shutdown)."""
        if self._dirty and self._last_time is not None:
            self._save(self._last_time)

    # --- periods ---------------------------------------------------------------------------

    def _roll_periods(
        self, time: datetime, registers: Mapping[str, tuple[Decimal, str | None]]
    ) -> bool:
        """Start the periods ``time`` has entered; add registers seen for the first time."""
        day_start, day_end = self._day_span
        if day_start <= time.timestamp() < day_end:
            return self._add_new_registers(registers)
        changed = False
        continuous = (
            self._last_time is not None
            and 0 <= _seconds(time, self._last_time) <= self._max_gap.total_seconds()
        )
        for name, start in zip(PERIODS, period_starts(time, self._zone), strict=True):
            period = self._periods.get(name)
            if period is None or start.timestamp() > period.start.timestamp():
                self._periods[name] = self._new_period(name, start, continuous, registers)
                changed = True
        day = self._periods["day"].start
        next_day = local_midnight(day.astimezone(self._zone).date() + _ONE_DAY, self._zone)
        self._day_span = (day.timestamp(), next_day.timestamp())
        return self._add_new_registers(registers) or changed

    def _add_new_registers(self, registers: Mapping[str, tuple[Decimal, str | None]]) -> bool:
        """Count registers a running period has no baseline for from now on (it is partial)."""
        added = False
        for name, period in self._periods.items():
            if registers.keys() <= period.base.keys():
                continue
            for key, (value, _unit) in registers.items():
                if key not in period.base:
                    _log.info("totals: %s counted from now on for this %s (partial)", key, name)
                    period.base[key] = value
                    period.partial = True
                    added = True
        return added

    def _new_period(
        self,
        name: str,
        start: datetime,
        continuous: bool,
        registers: Mapping[str, tuple[Decimal, str | None]],
    ) -> _Period:
        if continuous:
            # Count from the last reading before the period began: nothing falls between two
            # periods. A register seen for the first time, or replaced, counts from now.
            base = dict(self._last)
            partial = False
            for key, (value, _unit) in registers.items():
                if key not in base or value < base[key]:
                    base[key] = value
                    partial = True
        else:
            base = {key: value for key, (value, _unit) in registers.items()}
            partial = True
            _log.info(
                "totals: new %s from %s; the first reading is its baseline (partial)",
                name,
                start.isoformat(),
            )
        return _Period(start, partial, base)

    def _follow_replacements(self, registers: Mapping[str, tuple[Decimal, str | None]]) -> bool:
        """Re-base every register that went backwards (a replaced meter); keep what it counted."""
        replaced = False
        for key, (value, _unit) in registers.items():
            last = self._last.get(key)
            if last is None or value >= last:
                continue
            _log.warning(
                "totals: %s went back from %s to %s (meter replaced?); counting on from %s",
                key,
                last,
                value,
                value,
            )
            for period in self._periods.values():
                period.carried[key] = period.total(key, last)
                period.base[key] = value
                period.partial = True
            replaced = True
        return replaced

    def _totals(self, time: datetime) -> Totals:
        by_name = {name: self._period_totals(self._periods[name]) for name in PERIODS}
        return Totals(
            time=time,
            zone=_zone_name(self._zone),
            day=by_name["day"],
            month=by_name["month"],
            year=by_name["year"],
            units=dict(sorted(self._units.items())),
        )

    def _period_totals(self, period: _Period) -> PeriodTotals:
        values: dict[str, Decimal] = {}
        for key in sorted(self._last):
            values[key] = period.total(key, self._last[key])
        for direction, name in _SUMS.items():
            parts = [
                amount
                for key, amount in values.items()
                if key.startswith(f"energy_{direction}_") and key != name
            ]
            if parts:
                values[name] = sum(parts, _ZERO)
        return PeriodTotals(period.start, period.partial, values)

    # --- the state file --------------------------------------------------------------------

    def _load(self) -> None:
        path = self._state_file
        if path is None:
            return
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            _log.info("totals: no state file %s yet; starting new baselines", path)
            return
        except OSError as exc:
            _log.warning("totals: cannot read %s (%s); starting new baselines", path, exc)
            return
        try:
            self._restore(json.loads(text))
        except (ValueError, TypeError, KeyError, InvalidOperation, AttributeError) as exc:
            _log.warning(
                "totals: state file %s is unreadable (%s); starting new baselines", path, exc
            )
            self._periods, self._last, self._units, self._last_time = {}, {}, {}, None

    def _restore(self, state: Any) -> None:
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unknown version {state.get('version')!r}")
        if state.get("zone") != _zone_name(self._zone):
            _log.info(
                "totals: state file is for zone %s, not %s; starting new baselines",
                state.get("zone"),
                _zone_name(self._zone),
            )
            return
        periods = {}
        for name in PERIODS:
            raw = state["periods"][name]
            periods[name] = _Period(
                start=_aware(raw["start"]),
                partial=bool(raw["partial"]),
                base=_decimals(raw["base"]),
                carried=_decimals(raw["carried"]),
            )
        last = _decimals(state["last"])
        units = {
            str(key): None if unit is None else str(unit) for key, unit in state["units"].items()
        }
        last_time = _aware(state["last_time"])
        self._periods, self._last, self._units, self._last_time = periods, last, units, last_time
        self._saved_clock = self._clock()  # the file holds this state already

    def _state(self) -> dict[str, object]:
        return {
            "version": _STATE_VERSION,
            "zone": _zone_name(self._zone),
            "last_time": None if self._last_time is None else self._last_time.isoformat(),
            "last": _texts(self._last),
            "units": dict(self._units),
            "periods": {
                name: {
                    "start": period.start.isoformat(),
                    "partial": period.partial,
                    "base": _texts(period.base),
                    "carried": _texts(period.carried),
                }
                for name, period in self._periods.items()
            },
        }

    def _save(self, time: datetime) -> None:
        self._saved_clock = self._clock()
        path = self._state_file
        if path is None:
            self._dirty = False
            return
        try:
            _write_atomically(path, json.dumps(self._state(), indent=1) + "\n")
        except OSError as exc:
            _log.warning("totals: cannot write %s: %s", path, exc)
            return
        self._dirty = False


def _seconds(later: datetime, earlier: datetime) -> float:
    """Seconds from ``earlier`` to ``later`` on the real time line (right across DST changes)."""
    return later.timestamp() - earlier.timestamp()


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without offset: {text!r}")
    return moment


def _decimals(raw: Mapping[str, str]) -> dict[str, Decimal]:
    values = {str(key): Decimal(str(value)) for key, value in raw.items()}
    if not all(value.is_finite() for value in values.values()):
        raise ValueError("non-finite register value")
    return values


def _texts(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {key: format(value, "f") for key, value in values.items()}


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and move it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
