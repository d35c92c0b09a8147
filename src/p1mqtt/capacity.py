"""The Flemish capacity tariff, computed from what the meter sends: pure functions, no clock.

Belgian e-MUCS 1.7+ meters send the pieces (see ``docs/capacity-tariff.md``):

* ``1-0:1.4.0``: the running quarter hour's demand. It is the energy imported since the quarter
  began divided by the whole quarter (15 minutes), so it starts at 0 at :00/:15/:30/:45 and
  climbs to the quarter's average at its end (seen in captures: 0.032 kW after 56 s and 0.040 kW
  after 69 s at a steady 0.524 kW).
* ``1-0:1.6.0``: this month's highest quarter-hour average, with its time.
* ``0-0:98.1.0``: the peaks of the last (up to 13) completed months.

Every time used here comes from the telegram (``0-0:1.0.0``), so the functions are deterministic.
"""

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from p1mqtt.protocol import CosemObject, ProfileEntry, Scalar, Telegram

__all__ = [
    "BILLED_MONTHS",
    "DEFAULT_FLOOR_KW",
    "QUARTER_SECONDS",
    "CapacityStatus",
    "billed_months",
    "capacity_status",
    "capacity_warning",
    "exact_json",
    "peak_threshold",
    "project_quarter",
    "quarter_bounds",
    "quarter_elapsed",
    "rolling_average",
    "shed_needed",
]

_log = logging.getLogger(__name__)

QUARTER_SECONDS = 900
"""Length of the demand period the tariff uses: a fixed quarter hour."""
DEFAULT_FLOOR_KW = Decimal("2.5")
"""The Flemish minimum: a month's peak below 2.5 kW is billed as 2.5 kW."""
BILLED_MONTHS = 12
"""The billed value is the average of this many monthly peaks (the running month included)."""

_KW = Decimal("0.001")
_ZERO = Decimal(0)
_QUARTER = Decimal(QUARTER_SECONDS)

_DEMAND = "1-0:1.4.0"
_MONTH_PEAK = "1-0:1.6.0"
_HISTORY = "0-0:98.1.0"
_POWER = "1-0:1.7.0"


# --- quarter hours -----------------------------------------------------------------------------


def quarter_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """The quarter hour holding ``moment``: its start and end, in ``moment``'s own time zone.

    Quarters start at :00, :15, :30 and :45 local time. They are computed on the UTC time line,
    which gives the same boundaries in every zone whose offset is a multiple of 15 minutes (all
    of Europe) and stays right in the repeated hour of the autumn DST change.
    """
    if moment.tzinfo is None:
        raise ValueError("quarter_bounds needs an aware datetime")
    second = int(moment.timestamp()) // QUARTER_SECONDS * QUARTER_SECONDS
    zone = moment.tzinfo
    start = datetime.fromtimestamp(second, UTC).astimezone(zone)
    end = datetime.fromtimestamp(second + QUARTER_SECONDS, UTC).astimezone(zone)
    return start, end


def quarter_elapsed(moment: datetime) -> int:
    """Whole seconds between the start of ``moment``'s quarter hour and ``moment`` (0..899)."""
    return int(moment.timestamp()) % QUARTER_SECONDS


def project_quarter(quarter_average_kw: Decimal, power_kw: Decimal, elapsed_s: int) -> Decimal:
    """The quarter hour's average at its end if ``power_kw`` continues, to the watt.

    ``quarter_average_kw`` is the meter's ``1-0:1.4.0``: energy so far divided by the whole
    quarter. The rest of the quarter adds ``power_kw`` for ``900 - elapsed_s`` seconds:
    ``projected = quarter_average + power * (900 - t) / 900``. (With ``A`` the average over the
    elapsed ``t`` seconds only, this is the same as ``(A*t + P*(900 - t)) / 900``.)
    """
    if not 0 <= elapsed_s < QUARTER_SECONDS:
        raise ValueError(f"elapsed_s must be in 0..{QUARTER_SECONDS - 1}, not {elapsed_s}")
    remaining = Decimal(QUARTER_SECONDS - elapsed_s)
    projected = quarter_average_kw + max(power_kw, _ZERO) * remaining / _QUARTER
    return projected.quantize(_KW, ROUND_HALF_UP)


def peak_threshold(
    month_peak_kw: Decimal, *, margin_kw: Decimal = _ZERO, floor_kw: Decimal = DEFAULT_FLOOR_KW
) -> Decimal:
    """The quarter average not to exceed: this month's billed peak less the safety margin.

    A month's peak below the floor is billed as the floor, so a new peak up to the floor costs
    nothing: the threshold is ``max(month_peak, floor) - margin``.
    """
    return max(month_peak_kw, floor_kw) - margin_kw


def shed_needed(
    projected_kw: Decimal, threshold_kw: Decimal, power_kw: Decimal, elapsed_s: int
) -> Decimal:
    """How many kW to switch off for the rest of the quarter so it ends at ``threshold_kw``.

    Lowering the power by ``s`` for the remaining ``900 - t`` seconds lowers the quarter average
    by ``s * (900 - t) / 900``, so ``s = (projected - threshold) * 900 / (900 - t)``, rounded up
    to the watt. It is capped at the current import ``power_kw``: nothing more can be switched
    off (when even that is not enough, the quarter's new peak can no longer be avoided).
    """
    if projected_kw <= threshold_kw:
        return _ZERO.quantize(_KW)
    if not 0 <= elapsed_s < QUARTER_SECONDS:
        raise ValueError(f"elapsed_s must be in 0..{QUARTER_SECONDS - 1}, not {elapsed_s}")
    remaining = Decimal(QUARTER_SECONDS - elapsed_s)
    needed = ((projected_kw - threshold_kw) * _QUARTER / remaining).quantize(_KW, ROUND_CEILING)
    return min(needed, max(power_kw, _ZERO).quantize(_KW, ROUND_HALF_UP))


# --- the 12-month average ----------------------------------------------------------------------


_ONE_DAY = timedelta(days=1)


def _month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def _entry_month(entry: ProfileEntry) -> int | None:
    """The month an entry covers: from its period end, else from the time of its peak."""
    if entry.period_end is not None:
        last_day = entry.period_end - _ONE_DAY
        return _month_index(last_day.year, last_day.month)
    if entry.timestamp is not None:
        return _month_index(entry.timestamp.year, entry.timestamp.month)
    return None


def _kw(value: Scalar, unit: str | None) -> Decimal | None:
    """A demand value in kW, or ``None`` when it is not a usable number."""
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        return None
    if unit is None or unit.lower() == "kw":
        return value
    if unit.lower() == "w":
        return value / 1000
    return None


def _history_peaks(history: Iterable[ProfileEntry]) -> dict[int, Decimal]:
    """The peak of every month the history covers, by month index; duplicates keep the highest."""
    peaks: dict[int, Decimal] = {}
    for entry in history:
        month = _entry_month(entry)
        value = _kw(entry.value, entry.unit)
        if month is None or value is None:
            _log.debug("peak history entry without a usable month or value: %r", entry)
            continue
        peaks[month] = max(value, peaks.get(month, value))
    return peaks


def billed_months(
    history: Sequence[ProfileEntry],
    month_peak: Decimal | None,
    *,
    month: datetime | None = None,
    floor_kw: Decimal = DEFAULT_FLOOR_KW,
) -> tuple[Decimal, ...]:
    """The monthly peaks the running month's bill averages, each raised to ``floor_kw``.

    That is ``month_peak`` (the running month, when known) and the completed months of
    ``history`` among the 11 before it, oldest first. ``month`` is any moment in the running
    month; without it the 11 most recent months of the history are taken. The order of the
    history does not matter (real meters send it oldest first, the e-MUCS example newest first).
    An entry whose peak time is a placeholder still counts, with its value (usually 0, so the
    floor). Months missing from the history are left out rather than guessed.
    """
    peaks = _history_peaks(history)
    if month is not None:
        running = _month_index(month.year, month.month)
        window = range(running - (BILLED_MONTHS - 1), running)
        completed = [peaks[m] for m in window if m in peaks]
    else:
        completed = [peaks[m] for m in sorted(peaks)[-(BILLED_MONTHS - 1) :]]
    values = completed + ([month_peak] if month_peak is not None else [])
    return tuple(max(value, floor_kw) for value in values)


def rolling_average(
    history: Sequence[ProfileEntry],
    month_peak: Decimal | None,
    *,
    month: datetime | None = None,
    floor_kw: Decimal = DEFAULT_FLOOR_KW,
) -> Decimal:
    """The billed average monthly peak (kW, to the watt) with the running month as the last one.

    The mean of :func:`billed_months`. With fewer than 12 months known, the mean is over the
    months known, as Fluvius does for meters with a shorter history; with none, the floor.
    """
    return _mean(billed_months(history, month_peak, month=month, floor_kw=floor_kw), floor_kw)


def _mean(values: Sequence[Decimal], floor_kw: Decimal) -> Decimal:
    if not values:
        return floor_kw.quantize(_KW, ROUND_HALF_UP)
    return (sum(values, _ZERO) / len(values)).quantize(_KW, ROUND_HALF_UP)


# --- the status of one telegram ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapacityStatus:
    """Where this month's capacity tariff stands at one telegram (``<prefix>/capacity``)."""

    time: datetime
    """The telegram's time (``0-0:1.0.0``)."""
    quarter_average_kw: Decimal
    """``1-0:1.4.0``: energy of the running quarter so far over the whole quarter."""
    quarter_start: datetime
    quarter_end: datetime
    quarter_elapsed_s: int
    power_kw: Decimal | None
    """``1-0:1.7.0``, the import power now; ``None`` when the meter does not send it."""
    quarter_projected_kw: Decimal | None
    """The quarter's average at its end if ``power_kw`` continues."""
    month_peak_kw: Decimal
    """``1-0:1.6.0``: this month's highest quarter average so far (0 before the first one)."""
    month_peak_at: datetime | None
    """When that peak happened, as the meter stamps it; ``None`` for a placeholder."""
    rolling_average_kw: Decimal
    """The billed 12-month average of monthly peaks, each at least ``floor_kw``."""
    rolling_months: int
    """How many months that average is over (12 once the meter has a year of history)."""
    floor_kw: Decimal
    margin_kw: Decimal
    threshold_kw: Decimal
    """``max(month_peak, floor) - margin``: the quarter average to stay under."""
    peak_warning: bool
    """Whether the projection exceeds the threshold."""
    shed_kw: Decimal
    """kW to switch off for the rest of the quarter to stay at the threshold (capped at
    ``power_kw``)."""

    def to_dict(self) -> dict[str, object]:
        """The JSON fields, in order; decimals stay :class:`~decimal.Decimal`."""
        return {
            "time": self.time,
            "quarter_average_kw": self.quarter_average_kw,
            "quarter_projected_kw": self.quarter_projected_kw,
            "quarter_start": self.quarter_start,
            "quarter_end": self.quarter_end,
            "quarter_elapsed_s": self.quarter_elapsed_s,
            "power_kw": self.power_kw,
            "month_peak_kw": self.month_peak_kw,
            "month_peak_at": self.month_peak_at,
            "rolling_average_kw": self.rolling_average_kw,
            "rolling_months": self.rolling_months,
            "floor_kw": self.floor_kw,
            "margin_kw": self.margin_kw,
            "threshold_kw": self.threshold_kw,
            "peak_warning": self.peak_warning,
            "shed_kw": self.shed_kw,
        }

    def to_json(self) -> str:
        """The ``<prefix>/capacity`` payload: exact decimals as numbers, ISO times with offsets."""
        return exact_json(self.to_dict())


def _reading_kw(obj: CosemObject | None) -> Decimal | None:
    return None if obj is None else _kw(obj.value, obj.unit)


def _running_month_peak(obj: CosemObject, time: datetime) -> tuple[Decimal | None, datetime | None]:
    """This month's peak and its time; a peak stamped before the month began is not this month's.

    (A meter that has not yet reset ``1-0:1.6.0`` at the month change still shows last month's
    peak, which the history also holds.)
    """
    value = _reading_kw(obj)
    at = obj.timestamp
    if value is None:
        return None, at
    if at is not None:
        local = at.astimezone(time.tzinfo)
        if _month_index(local.year, local.month) < _month_index(time.year, time.month):
            return _ZERO.quantize(_KW), None
    return value, at


@dataclass(frozen=True, slots=True)
class _Quarter:
    """The cheap part of a capacity status: the running quarter against this month's peak."""

    time: datetime
    average: Decimal
    month_peak: Decimal
    month_peak_at: datetime | None
    power: Decimal | None
    elapsed: int
    threshold: Decimal
    projected: Decimal | None

    @property
    def warning(self) -> bool:
        return self.projected is not None and self.projected > self.threshold


def _quarter(telegram: Telegram, margin_kw: Decimal, floor_kw: Decimal) -> _Quarter | None:
    time = telegram.timestamp
    average = _reading_kw(telegram.get(_DEMAND))
    peak_object = telegram.get(_MONTH_PEAK)
    if time is None or average is None or peak_object is None:
        return None
    month_peak, month_peak_at = _running_month_peak(peak_object, time)
    if month_peak is None:
        return None
    elapsed = quarter_elapsed(time)
    power = _reading_kw(telegram.get(_POWER))
    return _Quarter(
        time=time,
        average=average,
        month_peak=month_peak,
        month_peak_at=month_peak_at,
        power=power,
        elapsed=elapsed,
        threshold=peak_threshold(month_peak, margin_kw=margin_kw, floor_kw=floor_kw),
        projected=None if power is None else project_quarter(average, power, elapsed),
    )


def capacity_warning(
    telegram: Telegram,
    *,
    margin_kw: Decimal = _ZERO,
    floor_kw: Decimal = DEFAULT_FLOOR_KW,
) -> bool | None:
    """The ``peak_warning`` of :func:`capacity_status`, or ``None`` when that would be ``None``.

    A fraction of its cost (the 13-month history is not read): for deciding, on every telegram,
    whether a status must be published now.
    """
    quarter = _quarter(telegram, margin_kw, floor_kw)
    return None if quarter is None else quarter.warning


def capacity_status(
    telegram: Telegram,
    *,
    margin_kw: Decimal = _ZERO,
    floor_kw: Decimal = DEFAULT_FLOOR_KW,
) -> CapacityStatus | None:
    """The capacity figures of one telegram, or ``None`` when the meter does not send them.

    ``None`` for meters without ``1-0:1.4.0`` or ``1-0:1.6.0`` (e-MUCS before 1.7, Dutch
    meters) and for telegrams without a usable time (``0-0:1.0.0``), which quarters and months
    are counted from. A missing or empty ``0-0:98.1.0`` means no completed month is known.
    """
    quarter = _quarter(telegram, margin_kw, floor_kw)
    if quarter is None:
        return None
    history_object = telegram.get(_HISTORY)
    history = () if history_object is None else (history_object.entries or ())
    months = billed_months(history, quarter.month_peak, month=quarter.time, floor_kw=floor_kw)
    start, end = quarter_bounds(quarter.time)
    power, projected = quarter.power, quarter.projected
    shed = (
        shed_needed(projected, quarter.threshold, power, quarter.elapsed)
        if projected is not None and power is not None
        else _ZERO.quantize(_KW)
    )
    return CapacityStatus(
        time=quarter.time,
        quarter_average_kw=quarter.average,
        quarter_start=start,
        quarter_end=end,
        quarter_elapsed_s=quarter.elapsed,
        power_kw=power,
        quarter_projected_kw=projected,
        month_peak_kw=quarter.month_peak,
        month_peak_at=quarter.month_peak_at,
        rolling_average_kw=_mean(months, floor_kw),
        rolling_months=len(months),
        floor_kw=floor_kw,
        margin_kw=margin_kw,
        threshold_kw=quarter.threshold,
        peak_warning=quarter.warning,
        shed_kw=shed,
    )


# --- JSON with exact numbers -------------------------------------------------------------------


def exact_json(value: object) -> str:
    """Compact JSON where :class:`~decimal.Decimal` values are written digit for digit.

    ``json.dumps`` would need floats, which do not keep ``2.500`` or long registers exactly.
    Datetimes become ISO 8601 text with their offset. Mappings, lists, tuples, strings, ints,
    bools and ``None`` are written as usual.
    """
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON form")
        return format(value.copy_abs() if value.is_zero() else value, "f")
    if isinstance(value, datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        items = (json.dumps(str(key)) + ":" + exact_json(item) for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(exact_json(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} has no JSON form")
