"""A simulated Belgian smart meter (Fluvius Sagemcom T211/S211, e-MUCS 1.7) that writes telegrams.

Pure: no I/O, no clock, no threads, no global mutable state. The caller says what time it is;
:meth:`SimulatedMeter.telegram` evolves the meter up to that moment and returns the telegram a
real meter would send then, CRC and all::

    meter = SimulatedMeter("t211", start=moment, seed=7)
    for data in stream(meter, moment, 10):
        ...

The household behind the meter is modelled plainly but consistently:

* **Electricity.** A base load per phase, a fridge that cycles, and appliances (kettle, oven,
  washing machine, ...) started at random with a rate that follows the hour of the day (busier
  mornings and evenings, another rhythm at weekends). A PV installation produces from sunrise
  to sunset following the sun's elevation over Brussels, with sunny, mixed (passing clouds) and
  overcast days. Each phase reports its net power (import or export); the totals
  ``1.7.0``/``2.7.0`` are the net sum over the phases, as on Sagemcom meters. Voltages sag with
  load and rise with export; currents follow from power, reactive power and voltage.
* **Registers** are the exact integral of the reported power (held constant until the next
  sample, at most :data:`MAX_STEP` seconds), kept in joules so they never lose or invent energy,
  and added to the register of the tariff active at the time: tariff 1 (day) on weekdays
  07:00-22:00 local time, tariff 2 (night) otherwise and at weekends (Belgian numbering, public
  holidays not modelled).
* **Capacity tariff.** ``1.4.0`` is the import energy since the quarter-hour began divided by
  the whole 15 minutes, as on real meters: 0 at the boundary, climbing to the quarter's
  average at its end. When a quarter closes, its average (four times the Wh
  the import registers rose by) becomes the month's peak ``1.6.0`` if higher, stamped with the
  start of that quarter. At a month change the month's peak is appended to the 13-month
  history ``98.1.0`` (oldest first, at most 13 entries) and ``1.6.0`` restarts at 0 kW stamped
  at the start of the month.
* **Gas** (channel 1) burns for central heating, which depends on the season's outdoor
  temperature and a thermostat schedule (comfort mornings and evenings), and for hot water
  during showers. **Water** (channel 2, or 1 without gas) flows in bursts: toilets, taps,
  showers, appliance fills. Both M-Bus meters report every 5 minutes; the reading and its
  capture time are those of the last 5-minute boundary.

Quarter-hour and 5-minute boundaries are taken on the UTC clock, which matches local time in
every zone whose offset is a multiple of 15 minutes (Europe/Brussels is).
"""

import math
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from p1mqtt.errors import UsageError
from p1mqtt.protocol.encoder import encode_telegram
from p1mqtt.protocol.timestamps import format_timestamp

__all__ = ["HEADERS", "MAX_STEP", "Model", "SimulatedMeter", "stream"]

Model = Literal["t211", "s211"]
"""Sagemcom T211 (three-phase, 3N400 V) or S211 (single-phase)."""

HEADERS: Mapping[str, str] = MappingProxyType(
    {"t211": "FLU5\\253769484_A", "s211": "FLU5\\253770234_A"}
)
"""Identification line of each model, without the leading ``/``."""

MAX_STEP = 60
"""Longest stretch (seconds) the model holds one power sample when ``now`` jumps ahead."""

_QUARTER = 900
_CAPTURE = 300
_HISTORY_LENGTH = 13
_NEVER = 1 << 62
_DAY = 86400

# Brussels, for the sun.
_LATITUDE = math.radians(50.85)
_SOLAR_NOON_UTC = 43200 - int(4.35 / 15 * 3600)
_OMEGA = 2 * math.pi / _DAY

# Events per hour, by local hour of day.
_APPLIANCE_RATE_WEEKDAY = (
    0.05, 0.03, 0.03, 0.03, 0.05, 0.15, 0.8, 1.2, 0.6, 0.25, 0.25, 0.3,
    0.5, 0.3, 0.25, 0.25, 0.4, 0.9, 1.3, 1.0, 0.8, 0.7, 0.5, 0.2,
)  # fmt: skip
_APPLIANCE_RATE_WEEKEND = (
    0.05, 0.05, 0.03, 0.03, 0.03, 0.05, 0.15, 0.4, 0.9, 1.1, 0.9, 0.8,
    0.9, 0.7, 0.6, 0.6, 0.7, 0.9, 1.3, 1.1, 0.8, 0.7, 0.5, 0.3,
)  # fmt: skip
_WATER_RATE_FACTOR = 1.6

# OBIS "C" codes per phase: power import, power export, voltage, current.
_PHASE_CODES = {
    3: ((21, 22, 32, 31), (41, 42, 52, 51), (61, 62, 72, 71)),
    1: ((21, 22, 32, 31),),
}

# Periods of the day that weight which appliance starts: night, morning, day, evening.
_PERIOD_OF_HOUR = (0,) * 6 + (1,) * 3 + (2,) * 8 + (3,) * 6 + (0,)


class _Appliance(NamedTuple):
    name: str
    watts: tuple[int, int]
    seconds: tuple[int, int]
    weights: tuple[float, float, float, float]
    """Relative chance by period: night, morning, day, evening."""
    fill_litres: int = 0


_APPLIANCES = (
    _Appliance("kettle", (1850, 2200), (120, 240), (0.2, 4.0, 1.0, 1.5)),
    _Appliance("toaster", (800, 1000), (120, 240), (0.0, 2.5, 0.3, 0.2)),
    _Appliance("microwave", (900, 1250), (60, 360), (0.3, 1.0, 1.5, 1.5)),
    _Appliance("cooktop", (1200, 3200), (480, 1800), (0.0, 0.3, 1.0, 3.0)),
    _Appliance("oven", (1900, 2500), (1500, 3600), (0.0, 0.0, 0.4, 1.5)),
    _Appliance("washing_machine", (1800, 2100), (900, 1500), (0.1, 0.8, 1.0, 0.8), 45),
    _Appliance("dishwasher", (1800, 2100), (900, 1500), (0.3, 0.2, 0.6, 1.2), 12),
    _Appliance("tumble_dryer", (2000, 2600), (2400, 4800), (0.0, 0.2, 0.8, 0.5)),
    _Appliance("vacuum", (600, 900), (300, 1200), (0.0, 0.4, 1.0, 0.2)),
    _Appliance("hair_dryer", (1200, 1800), (180, 600), (0.0, 2.0, 0.3, 0.5)),
    _Appliance("tv", (80, 220), (1800, 10800), (0.2, 0.3, 1.0, 3.0)),
    _Appliance("lights", (40, 180), (1800, 14400), (0.3, 1.5, 0.3, 3.0)),
)


class _WaterUse(NamedTuple):
    name: str
    litres: tuple[int, int]
    seconds: tuple[int, int]
    hot_gas_ml_s: int
    """Gas the combi boiler burns meanwhile (mL/s; 400 mL/s = 1.44 m³/h)."""
    weights: tuple[float, float, float, float]


_WATER_USES = (
    _WaterUse("toilet", (6, 9), (60, 90), 0, (1.0, 2.0, 1.0, 1.5)),
    _WaterUse("tap", (1, 6), (20, 120), 0, (0.3, 1.5, 1.0, 1.5)),
    _WaterUse("kitchen_hot", (3, 10), (60, 180), 280, (0.0, 0.8, 0.6, 1.5)),
    _WaterUse("shower", (35, 75), (300, 660), 420, (0.0, 3.0, 0.3, 1.0)),
)


def _cumulative(weights: list[float]) -> tuple[float, ...]:
    total = 0.0
    out: list[float] = []
    for weight in weights:
        total += weight
        out.append(total)
    return tuple(out)


_APPLIANCE_CUMULATIVE = tuple(
    _cumulative([appliance.weights[period] for appliance in _APPLIANCES]) for period in range(4)
)
_WATER_CUMULATIVE = tuple(
    _cumulative([use.weights[period] for use in _WATER_USES]) for period in range(4)
)


def _hex(text: str) -> str:
    return text.encode("ascii").hex().upper()


def _kw(watts: int) -> str:
    return f"{watts // 1000:02d}.{watts % 1000:03d}*kW"


def _m3(litres: int) -> str:
    return f"{litres // 1000:05d}.{litres % 1000:03d}*m3"


def _epoch(moment: datetime) -> int:
    return math.floor(moment.timestamp())


def _month_after(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _month_before(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _is_day_tariff(local: datetime) -> bool:
    return local.weekday() < 5 and 7 <= local.hour < 22


class SimulatedMeter:
    """A Fluvius e-MUCS 1.7 meter (``0-0:96.1.4(50217)``) with a household behind it.

    ``start`` (aware) is the moment the simulation begins; ``seed`` makes every value
    reproducible; ``gas``/``water`` attach the M-Bus meters (gas on channel 1, water on the next
    free channel); ``zone`` is the meter's local time zone (DST letter, tariffs, months).
    Call :meth:`telegram` with non-decreasing moments.
    """

    def __init__(
        self,
        model: Model = "t211",
        *,
        start: datetime,
        seed: int = 0,
        gas: bool = True,
        water: bool = True,
        zone: str = "Europe/Brussels",
    ) -> None:
        if model not in HEADERS:
            raise UsageError(f"unknown meter model {model!r}: use 't211' or 's211'")
        if start.tzinfo is None or start.utcoffset() is None:
            raise UsageError("SimulatedMeter needs an aware start time")
        try:
            self._zone = ZoneInfo(zone)
        except (ValueError, ZoneInfoNotFoundError) as error:
            raise UsageError(f"unknown time zone {zone!r}") from error
        self.model: Model = model
        self._header = HEADERS[model]
        self._phases = 3 if model == "t211" else 1
        self._rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not secrets
        self._t = _epoch(start)
        self._init_household()
        self._init_registers()
        self._init_static_lines(gas, water)
        self._init_demand()
        self._on_new_day(self._t)
        self._on_new_quarter(self._t)
        self._sample(self._t, 0)
        self._init_quarter_energy()
        self._capture_mbus(self._t - self._t % _CAPTURE)

    # --- public ------------------------------------------------------------------------------

    @property
    def time(self) -> datetime:
        """The moment the meter has been evolved to (whole seconds, in the meter's zone)."""
        return datetime.fromtimestamp(self._t, self._zone)

    def telegram(self, now: datetime) -> bytes:
        """One complete CRC-valid telegram for ``now`` (aware), after evolving the meter to it.

        ``now`` is truncated to whole seconds; it must not be earlier than the previous call's
        (or ``start``). Two calls within the same second return the same telegram.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise UsageError("SimulatedMeter.telegram needs an aware datetime")
        target = _epoch(now)
        if target < self._t:
            raise UsageError(
                f"SimulatedMeter.telegram: {now.isoformat()} is before the meter's time "
                f"{self.time.isoformat()}; time only moves forward"
            )
        self._advance(target)
        return encode_telegram(self._header, self._lines())

    # --- set-up ------------------------------------------------------------------------------

    def _init_household(self) -> None:
        rng = self._rng
        phases = self._phases
        if phases == 3:
            self._base_w = [rng.randint(50, 130) for _ in range(3)]
        else:
            self._base_w = [rng.randint(140, 260)]
        self._reactive_var = [rng.randint(25, 90) for _ in range(phases)]
        self._volt0_dv = [rng.randint(2290, 2360) for _ in range(phases)]
        self._fridge_w = rng.randint(70, 130)
        self._fridge_phase = rng.randrange(phases)
        self._fridge_offset = rng.randrange(3000)
        self._appliance_phase = [rng.randrange(phases) for _ in _APPLIANCES]
        kwp = rng.randint(30, 70) / 10
        self._pv_peak_w = int(kwp * 850)
        if phases == 3 and kwp >= 5:
            self._pv_share = [1 / 3, 1 / 3, 1 / 3]
        else:
            self._pv_share = [0.0] * phases
            self._pv_share[rng.randrange(phases)] = 1.0
        self._heat_loss_w_per_k = rng.randint(150, 230)
        # Running appliances: (end, phase, watts); running water uses: (end, mL/s, gas mL/s).
        self._events: list[tuple[int, int, int]] = []
        self._water_events: list[tuple[int, int, int]] = []
        self._event_w = [0] * phases
        self._water_ml_s = 0
        self._hot_gas_ml_s = 0
        self._next_expiry = _NEVER
        self._shaded = False

    def _init_registers(self) -> None:
        rng = self._rng
        # Energy in joules (1 Wh = 3600 J): import/export, index 0 = tariff 1, 1 = tariff 2.
        self._import_j = [rng.randint(1_500_000, 9_000_000) * 3600, 0]
        self._import_j[1] = self._import_j[0] * rng.randint(90, 130) // 100
        self._export_j = [rng.randint(500_000, 6_000_000) * 3600, 0]
        self._export_j[1] = self._export_j[0] * rng.randint(15, 35) // 100
        self._gas_ml = rng.randint(800, 9000) * 1_000_000 + rng.randrange(1_000_000)
        self._water_ml = rng.randint(100, 900) * 1_000_000 + rng.randrange(1_000_000)

    def _init_static_lines(self, gas: bool, water: bool) -> None:
        rng = self._rng
        kind = "31" if self._phases == 3 else "11"
        meter_id = f"1SAG{kind}{rng.randrange(10**8):08d}"
        self._head_lines = ("0-0:96.1.4(50217)", f"0-0:96.1.1({_hex(meter_id)})")
        self._tail_lines = (
            "0-0:96.3.10(1)",
            "0-0:17.0.0(999.9*kW)",
            "1-0:31.4.0(999*A)",
            "0-0:96.13.0()",
        )
        gas_id = f"7FLO{rng.randrange(10**10):010d}"
        water_id = f"8SET{rng.randrange(10**10):010d}"
        self._gas_channel = 1 if gas else 0
        self._water_channel = (2 if gas else 1) if water else 0
        self._gas_lines: tuple[str, ...] = ()
        self._water_lines: tuple[str, ...] = ()
        if gas:
            self._gas_lines = ("0-1:24.1.0(003)", f"0-1:96.1.1({_hex(gas_id)})", "0-1:24.4.0(1)")
        if water:
            n = self._water_channel
            self._water_lines = (f"0-{n}:24.1.0(007)", f"0-{n}:96.1.1({_hex(water_id)})")
        self._gas_reading = ""
        self._water_reading = ""

    def _init_demand(self) -> None:
        """Seed the 13-month peak history and this month's peak so far."""
        rng = self._rng
        local = datetime.fromtimestamp(self._t, self._zone)
        self._month = (local.year, local.month)
        year, month = self._month
        history: list[str] = []
        for _ in range(_HISTORY_LENGTH):
            year, month = _month_before(year, month)
            history.append(self._seeded_history_entry(rng, year, month))
        history.reverse()
        self._history = history
        self._history_line = self._format_history()
        month_start = _epoch(datetime(local.year, local.month, 1, tzinfo=self._zone))
        closed = (self._t - self._t % _QUARTER - month_start) // _QUARTER
        if closed <= 0:
            self._set_peak(month_start, 0)
        else:
            self._set_peak(self._seeded_peak_time(month_start, closed), rng.randint(350, 800) * 4)

    def _seeded_peak_time(self, month_start: int, closed: int) -> int:
        """A closed quarter of this month, preferably in a busy hour (the peak's moment)."""
        rng = self._rng
        moment = month_start
        for _ in range(24):
            moment = month_start + rng.randrange(closed) * _QUARTER
            if datetime.fromtimestamp(moment, self._zone).hour in (7, 8, 17, 18, 19, 20, 21):
                break
        return moment

    def _seeded_history_entry(self, rng: random.Random, year: int, month: int) -> str:
        end = datetime(*_month_after(year, month), 1, tzinfo=self._zone)
        days = (end.date() - date(year, month, 1)).days
        hour = rng.choice((7, 8, 12, 17, 18, 18, 19, 19, 20, 20, 21, 22))
        peak = datetime(year, month, rng.randint(1, days), hour, rng.choice((0, 15, 30, 45)))
        peak = peak.replace(tzinfo=self._zone)
        winter = month in (11, 12, 1, 2)
        summer = month in (5, 6, 7, 8)
        low, high = (1000, 1650) if winter else (600, 950) if summer else (750, 1200)
        watts = rng.randint(low, high) * 4
        return f"({format_timestamp(end)})({format_timestamp(peak)})({_kw(watts)})"

    def _format_history(self) -> str:
        entries = "".join(self._history) if self._history else "()"
        return f"0-0:98.1.0({len(self._history)})(1-0:1.6.0)(1-0:1.6.0){entries}"

    def _set_peak(self, quarter_start: int, watts: int) -> None:
        self._peak_w = watts
        stamp = format_timestamp(datetime.fromtimestamp(quarter_start, self._zone))
        self._peak_line = f"1-0:1.6.0({stamp})({_kw(watts)})"

    def _init_quarter_energy(self) -> None:
        """Start mid-quarter as if the current power had been drawn since the quarter began."""
        self._quarter_start = self._t - self._t % _QUARTER
        before = max(self._net_total, 0) * (self._t - self._quarter_start)
        self._quarter_start_j = sum(self._import_j) - before
        self._quarter_start_wh = self._import_wh() - before // 3600

    def _import_wh(self) -> int:
        """Import in Wh as the telegram shows it: the sum of the two (truncated) registers."""
        return self._import_j[0] // 3600 + self._import_j[1] // 3600

    # --- evolution ---------------------------------------------------------------------------

    def _advance(self, target: int) -> None:
        while self._t < target:
            t = self._t
            boundary = t - t % _CAPTURE + _CAPTURE
            end = min(target, boundary, t + MAX_STEP)
            self._integrate(end - t)
            self._t = end
            if end == boundary:
                self._on_boundary(end)
            self._sample(end, end - t)

    def _integrate(self, seconds: int) -> None:
        net = self._net_total
        if net > 0:
            self._import_j[self._tariff_index] += net * seconds
        elif net < 0:
            self._export_j[self._tariff_index] -= net * seconds
        self._gas_ml += (self._heating_ml_s + self._hot_gas_ml_s) * seconds
        self._water_ml += self._water_ml_s * seconds

    def _on_boundary(self, t: int) -> None:
        if t % _QUARTER == 0:
            self._close_quarter(t)
            local = datetime.fromtimestamp(t, self._zone)
            if (local.year, local.month) != self._month:
                self._close_month(t, local)
            if local.hour == 0 and local.minute == 0:
                self._on_new_day(t)
            self._on_new_quarter(t)
        self._capture_mbus(t)

    def _close_quarter(self, t: int) -> None:
        imported = sum(self._import_j)
        wh = self._import_wh()
        average_w = (wh - self._quarter_start_wh) * 4
        if average_w > self._peak_w:
            self._set_peak(t - _QUARTER, average_w)
        self._quarter_start = t
        self._quarter_start_j = imported
        self._quarter_start_wh = wh

    def _close_month(self, t: int, local: datetime) -> None:
        period = format_timestamp(local)
        peak = self._peak_line[len("1-0:1.6.0") :]
        self._history.append(f"({period}){peak}")
        del self._history[:-_HISTORY_LENGTH]
        self._history_line = self._format_history()
        self._month = (local.year, local.month)
        self._set_peak(t, 0)

    def _on_new_day(self, t: int) -> None:
        """Weather of the day: sun path, clouds, outdoor temperature."""
        rng = self._rng
        local = datetime.fromtimestamp(t, self._zone)
        day_of_year = local.timetuple().tm_yday
        declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + day_of_year) / 365)
        self._sun_a = math.sin(_LATITUDE) * math.sin(declination)
        self._sun_b = math.cos(_LATITUDE) * math.cos(declination)
        sky = rng.random()
        if sky < 0.35:  # sunny: rare thin clouds
            self._clearness, self._cloud_dwell, self._shade = 0.97, 2400.0, 0.8
        elif sky < 0.75:  # mixed: clouds passing every minute or two
            self._clearness, self._cloud_dwell, self._shade = 0.85, 90.0, 0.3
        else:  # overcast
            self._clearness, self._cloud_dwell, self._shade = 0.25, 600.0, 0.6
        self._season_temp = 10.5 - 7.0 * math.cos(2 * math.pi * (day_of_year - 15) / 365.25)
        self._season_temp += rng.uniform(-3.0, 3.0)

    def _on_new_quarter(self, t: int) -> None:
        """What depends on the local time of day: tariff, activity, heating, grid voltage."""
        local = datetime.fromtimestamp(t, self._zone)
        hour = local.hour
        weekend = local.weekday() >= 5
        self._tariff_index = 0 if _is_day_tariff(local) else 1
        self._tariff_line = f"0-0:96.14.0(000{self._tariff_index + 1})"
        rates = _APPLIANCE_RATE_WEEKEND if weekend else _APPLIANCE_RATE_WEEKDAY
        self._appliance_p = rates[hour] / 3600
        self._water_p = rates[hour] * _WATER_RATE_FACTOR / 3600
        self._period = _PERIOD_OF_HOUR[hour]
        minutes = hour * 60 + local.minute
        self._heating_ml_s = self._heating(minutes, weekend)
        self._drift_dv = int(15 * math.cos(2 * math.pi * (minutes / 60 - 4) / 24))

    def _heating(self, minutes: int, weekend: bool) -> int:
        """Gas for central heating (mL/s) in the quarter starting ``minutes`` after midnight.

        Comfort periods heat to 20.5 °C, with a boost during their first hour to warm the house
        up again; outside them the house cools slowly and the boiler only keeps it above
        14 °C, at a fraction of the loss thanks to its thermal mass.
        """
        periods = ((480, 1380),) if weekend else ((390, 510), (1020, 1350))
        outdoor = self._season_temp + 3.5 * math.sin(2 * math.pi * (minutes / 60 - 9) / 24)
        if outdoor > 17.0:
            return 0
        heat_w = max(0.0, 14.0 - outdoor) * self._heat_loss_w_per_k * 0.4
        for begin, end in periods:
            if begin <= minutes < end:
                boost = 1.6 if minutes < begin + 60 else 1.0
                heat_w = max(0.0, 20.5 - outdoor) * self._heat_loss_w_per_k * boost
        # 1 m³ of gas gives ~9.5 kWh of heat in a condensing boiler: W -> mL/s.
        return int(heat_w / 9500 * 1e6 / 3600)

    def _capture_mbus(self, t: int) -> None:
        stamp = format_timestamp(datetime.fromtimestamp(t, self._zone))
        if self._gas_channel:
            self._gas_reading = f"0-1:24.2.3({stamp})({_m3(self._gas_ml // 1000)})"
        if self._water_channel:
            n = self._water_channel
            self._water_reading = f"0-{n}:24.2.1({stamp})({_m3(self._water_ml // 1000)})"

    # --- one sample of the household --------------------------------------------------------

    def _sample(self, t: int, seconds: int) -> None:
        rng = self._rng
        random = rng.random
        if t >= self._next_expiry:
            self._expire(t)
        if seconds:
            if random() < self._appliance_p * seconds:
                self._start_appliance(t)
            if random() < self._water_p * seconds:
                self._start_water_use(
                    t, rng.choices(_WATER_USES, cum_weights=_WATER_CUMULATIVE[self._period])
                )
        solar = self._solar_w(t, seconds)
        fridge_on = (t + self._fridge_offset) % 3000 < 1000
        nets: list[int] = []
        volts: list[int] = []
        amps: list[int] = []
        drift = self._drift_dv + int(50 * solar / self._pv_peak_w)
        for phase in range(self._phases):
            load = self._base_w[phase] + self._event_w[phase] + int(random() * 17) - 8
            if fridge_on and phase == self._fridge_phase:
                load += self._fridge_w
            net = load - int(solar * self._pv_share[phase])
            volt = self._volt0_dv[phase] + drift - net // 80 + int(random() * 7) - 3
            current = math.hypot(net, self._reactive_var[phase]) * 1000 / volt
            nets.append(net)
            volts.append(volt)
            amps.append(int(current + 0.5))
        self._nets = nets
        self._volts_dv = volts
        self._amps_ca = amps
        self._net_total = sum(nets)

    def _solar_w(self, t: int, seconds: int) -> float:
        elevation = self._sun_a + self._sun_b * math.cos((t % _DAY - _SOLAR_NOON_UTC) * _OMEGA)
        if elevation <= 0.02:
            return 0.0
        if seconds and self._rng.random() < seconds / self._cloud_dwell:
            self._shaded = not self._shaded
        factor = self._clearness * (self._shade if self._shaded else 1.0)
        return self._pv_peak_w * elevation * factor

    def _start_appliance(self, t: int) -> None:
        rng = self._rng
        index = rng.choices(
            range(len(_APPLIANCES)), cum_weights=_APPLIANCE_CUMULATIVE[self._period]
        )
        appliance = _APPLIANCES[index[0]]
        phase = self._appliance_phase[index[0]]
        if len(self._events) >= 6:
            return
        watts = rng.randint(*appliance.watts)
        end = t + rng.randint(*appliance.seconds)
        self._events.append((end, phase, watts))
        self._event_w[phase] += watts
        self._next_expiry = min(self._next_expiry, end)
        if appliance.fill_litres:
            self._add_water(t, appliance.fill_litres * 1000 // 180, 180, 0)

    def _start_water_use(self, t: int, chosen: list[_WaterUse]) -> None:
        use = chosen[0]
        rng = self._rng
        seconds = rng.randint(*use.seconds)
        ml_s = rng.randint(*use.litres) * 1000 // seconds
        self._add_water(t, ml_s, seconds, use.hot_gas_ml_s if self._gas_channel else 0)

    def _add_water(self, t: int, ml_s: int, seconds: int, gas_ml_s: int) -> None:
        if not self._water_channel:
            ml_s = 0
        end = t + seconds
        self._water_events.append((end, ml_s, gas_ml_s))
        self._water_ml_s += ml_s
        self._hot_gas_ml_s += gas_ml_s
        self._next_expiry = min(self._next_expiry, end)

    def _expire(self, t: int) -> None:
        self._events = [event for event in self._events if event[0] > t]
        self._water_events = [event for event in self._water_events if event[0] > t]
        event_w = [0] * self._phases
        for _, phase, watts in self._events:
            event_w[phase] += watts
        self._event_w = event_w
        self._water_ml_s = sum(event[1] for event in self._water_events)
        self._hot_gas_ml_s = sum(event[2] for event in self._water_events)
        ends = [event[0] for event in self._events] + [event[0] for event in self._water_events]
        self._next_expiry = min(ends, default=_NEVER)

    # --- rendering ---------------------------------------------------------------------------

    def _lines(self) -> list[str]:
        # Formatting integers scaled to float with a fixed number of decimals is exact here:
        # every value has at most 10 significant digits, far within a double's precision.
        t = self._t
        import_1, import_2 = self._import_j
        export_1, export_2 = self._export_j
        demand = (import_1 + import_2 - self._quarter_start_j) // _QUARTER
        total = self._net_total
        nets = self._nets
        lines = [
            *self._head_lines,
            f"0-0:1.0.0({format_timestamp(datetime.fromtimestamp(t, self._zone))})",
            f"1-0:1.8.1({import_1 // 3600 / 1000:010.3f}*kWh)",
            f"1-0:1.8.2({import_2 // 3600 / 1000:010.3f}*kWh)",
            f"1-0:2.8.1({export_1 // 3600 / 1000:010.3f}*kWh)",
            f"1-0:2.8.2({export_2 // 3600 / 1000:010.3f}*kWh)",
            self._tariff_line,
            f"1-0:1.4.0({demand / 1000:06.3f}*kW)",
            self._peak_line,
            self._history_line,
            f"1-0:1.7.0({max(total, 0) / 1000:06.3f}*kW)",
            f"1-0:2.7.0({max(-total, 0) / 1000:06.3f}*kW)",
        ]
        phases = list(
            zip(_PHASE_CODES[self._phases], nets, self._volts_dv, self._amps_ca, strict=True)
        )
        lines += [f"1-0:{c[0]}.7.0({max(n, 0) / 1000:06.3f}*kW)" for c, n, _, _ in phases]
        lines += [f"1-0:{c[1]}.7.0({max(-n, 0) / 1000:06.3f}*kW)" for c, n, _, _ in phases]
        lines += [f"1-0:{c[2]}.7.0({v / 10:05.1f}*V)" for c, _, v, _ in phases]
        lines += [f"1-0:{c[3]}.7.0({a / 100:06.2f}*A)" for c, _, _, a in phases]
        lines += self._tail_lines
        if self._gas_channel:
            lines += self._gas_lines
            lines.append(self._gas_reading)
        if self._water_channel:
            lines += self._water_lines
            lines.append(self._water_reading)
        return lines


def stream(
    meter: SimulatedMeter,
    start: datetime,
    count: int,
    interval: timedelta = timedelta(seconds=1),
) -> Iterator[bytes]:
    """Yield ``count`` telegrams of ``meter`` for ``start``, ``start + interval``, ...

    Moments are spaced in elapsed time, so a stream across a DST change has no gap or overlap.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise UsageError("stream needs an aware start time")
    if interval <= timedelta(0):
        raise UsageError(f"stream interval must be positive, not {interval}")
    base = start.astimezone(UTC)  # elapsed time: aware arithmetic in a zone is wall-clock
    for index in range(count):
        yield meter.telegram(base + index * interval)
