"""The simulated Belgian meter: valid, realistic and self-consistent telegrams."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from p1mqtt.errors import UsageError
from p1mqtt.protocol import Decoder, Telegram, TelegramDecoded
from p1mqtt.simulator import SimulatedMeter, stream

BRUSSELS = ZoneInfo("Europe/Brussels")
REGISTERS = ("1-0:1.8.1", "1-0:1.8.2", "1-0:2.8.1", "1-0:2.8.2")
L2_L3 = ("41.7.0", "61.7.0", "42.7.0", "62.7.0", "52.7.0", "72.7.0", "51.7.0", "71.7.0")


def local(*fields: int) -> datetime:
    """A Brussels wall-clock time from year, month, day[, hour, minute, second]."""
    return datetime(*fields, tzinfo=BRUSSELS)


class Reader:
    """Decodes telegrams one by one and insists each is clean."""

    def __init__(self) -> None:
        self.decoder = Decoder("Europe/Brussels")

    def __call__(self, data: bytes) -> Telegram:
        events = self.decoder.feed(data)
        assert len(events) == 1, events
        event = events[0]
        assert isinstance(event, TelegramDecoded), event
        telegram = event.telegram
        assert telegram.crc is not None
        assert telegram.unparsed == ()
        return telegram


def run(meter: SimulatedMeter, start: datetime, end: datetime, step: int) -> Iterator[Telegram]:
    """Decoded telegrams of ``meter`` from ``start`` to ``end`` inclusive, every ``step`` s."""
    read = Reader()
    moment = start.astimezone(UTC)  # step in elapsed time, not in wall-clock time
    while moment <= end:
        yield read(meter.telegram(moment))
        moment += timedelta(seconds=step)


def number(telegram: Telegram, obis: str) -> Decimal:
    """The decimal value of ``obis``."""
    value = telegram.value(obis)
    assert isinstance(value, Decimal), (obis, value)
    return value


def watts(telegram: Telegram, obis: str) -> int:
    """A kW value as integer watts."""
    return int(number(telegram, obis) * 1000)


def imported_wh(telegram: Telegram) -> int:
    """Import registers of both tariffs, in Wh."""
    return int((number(telegram, "1-0:1.8.1") + number(telegram, "1-0:1.8.2")) * 1000)


def day_tariff(moment: datetime) -> bool:
    """Belgian tariff 1: weekdays 07:00-22:00 local time."""
    moment = moment.astimezone(BRUSSELS)
    return moment.weekday() < 5 and 7 <= moment.hour < 22


def test_week_of_telegrams_decodes_cleanly_and_consistently() -> None:
    """A week (across the spring DST change), every 61 s: clean, monotonic, right tariff."""
    start = local(2026, 3, 23, 0, 0, 7)
    meter = SimulatedMeter("t211", start=start, seed=11)
    previous: Telegram | None = None
    count = 0
    for telegram in run(meter, start, start.astimezone(UTC) + timedelta(days=7), 61):
        count += 1
        moment = telegram.timestamp
        assert moment is not None
        assert moment == start.astimezone(UTC) + timedelta(seconds=61 * (count - 1))
        assert telegram.header == "FLU5\\253769484_A"
        assert telegram.value("0-0:96.1.4") == "50217"
        assert telegram.value("0-0:96.14.0") == (1 if day_tariff(moment) else 2)
        for code, phase in (("32", "21"), ("52", "41"), ("72", "61")):
            volts = number(telegram, f"1-0:{code}.7.0")
            assert Decimal(215) < volts < Decimal(250)
            power = watts(telegram, f"1-0:{phase}.7.0") - watts(
                telegram, f"1-0:{int(phase) + 1}.7.0"
            )
            amps = number(telegram, f"1-0:{int(code) - 1}.7.0")
            apparent = amps * volts
            assert abs(power) - 5 <= apparent <= abs(power) + 120
        assert watts(telegram, "1-0:1.7.0") == max(
            0,
            sum(watts(telegram, f"1-0:{base}.7.0") for base in (21, 41, 61))
            - sum(watts(telegram, f"1-0:{base}.7.0") for base in (22, 42, 62)),
        )
        if previous is not None:
            for obis in (*REGISTERS, "0-1:24.2.3", "0-2:24.2.1"):
                assert number(telegram, obis) >= number(previous, obis), obis
            if previous.value("0-0:96.14.0") == telegram.value("0-0:96.14.0"):
                idle = "2" if telegram.value("0-0:96.14.0") == 1 else "1"
                for direction in ("1", "2"):
                    obis = f"1-0:{direction}.8.{idle}"
                    assert number(telegram, obis) == number(previous, obis)
        previous = telegram
    assert count == 7 * 86400 // 61 + 1


def test_energy_moves_both_ways_with_solar_at_midday() -> None:
    """June: export around midday, none at night; both import and export registers move."""
    start = local(2026, 6, 8, 0, 0, 0)
    meter = SimulatedMeter("t211", start=start, seed=5)
    telegrams = list(run(meter, start, start + timedelta(days=3), 120))
    midday = [t for t in telegrams if t.timestamp and 11 <= t.timestamp.hour < 16]
    night = [t for t in telegrams if t.timestamp and 0 <= t.timestamp.hour < 4]
    assert any(watts(t, "1-0:2.7.0") > 500 for t in midday)
    assert all(watts(t, "1-0:2.7.0") == 0 for t in night)
    first, last = telegrams[0], telegrams[-1]
    assert number(last, "1-0:2.8.1") > number(first, "1-0:2.8.1")
    assert number(last, "1-0:1.8.2") > number(first, "1-0:1.8.2")


def test_gas_burns_mostly_mornings_and_evenings_in_winter() -> None:
    """January: more gas per hour in the comfort hours than in the small hours."""
    start = local(2026, 1, 12)
    meter = SimulatedMeter(start=start, seed=2)
    by_hour = [Decimal(0)] * 24
    previous: Telegram | None = None
    for telegram in run(meter, start, start + timedelta(days=7), 300):
        if previous is not None and previous.timestamp is not None:
            used = number(telegram, "0-1:24.2.3") - number(previous, "0-1:24.2.3")
            by_hour[previous.timestamp.hour] += used
        previous = telegram
    comfort = sum(by_hour[hour] for hour in (6, 7, 17, 18, 19, 20)) / 6
    small_hours = sum(by_hour[hour] for hour in range(5)) / 5
    assert comfort > 2 * small_hours


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (local(2026, 3, 27, 6, 59, 59), 2),  # Friday before 07:00
        (local(2026, 3, 27, 7, 0, 0), 1),
        (local(2026, 3, 27, 21, 59, 59), 1),
        (local(2026, 3, 27, 22, 0, 0), 2),
        (local(2026, 3, 28, 12, 0, 0), 2),  # Saturday noon
        (local(2026, 3, 29, 15, 0, 0), 2),  # Sunday
        (local(2026, 3, 30, 6, 59, 59), 2),  # Monday
        (local(2026, 3, 30, 7, 0, 0), 1),
    ],
)
def test_tariff_switches_at_local_times(moment: datetime, expected: int) -> None:
    """Tariff 1 (day) weekdays 07:00-22:00 local, tariff 2 (night) otherwise and at weekends."""
    start = local(2026, 3, 27, 6, 59, 58)
    meter = SimulatedMeter(start=start, seed=3)
    meter.telegram(start)
    assert Reader()(meter.telegram(moment)).value("0-0:96.14.0") == expected


def test_tariff_register_receives_the_energy() -> None:
    """Energy goes to 1.8.1 on a weekday afternoon and to 1.8.2 on a Sunday afternoon."""
    weekday = local(2026, 1, 14, 17, 0)
    sunday = local(2026, 1, 18, 17, 0)
    for start, busy, idle in ((weekday, "1", "2"), (sunday, "2", "1")):
        meter = SimulatedMeter(start=start, seed=8)
        telegrams = list(run(meter, start, start + timedelta(hours=3), 60))
        first, last = telegrams[0], telegrams[-1]
        assert number(last, f"1-0:1.8.{busy}") > number(first, f"1-0:1.8.{busy}")
        assert number(last, f"1-0:1.8.{idle}") == number(first, f"1-0:1.8.{idle}")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # Spring forward: 01:59:59 CET is followed by 03:00:00 CEST.
        (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), datetime(2026, 3, 29, 1, tzinfo=UTC)),
        # Fall back: 02:59:59 CEST is followed by 02:00:00 CET, the repeated hour.
        (datetime(2026, 10, 25, 0, 59, 59, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)),
    ],
)
def test_dst_letter_across_changes(before: datetime, after: datetime) -> None:
    """The S/W letter of 1.0.0 and of the M-Bus capture follows Brussels DST, both ways."""
    start = after - timedelta(hours=1, minutes=30)
    moments = sorted({start + timedelta(minutes=i) for i in range(181)} | {before, after})
    meter = SimulatedMeter(start=start, seed=4)
    read = Reader()
    seen: dict[datetime, str] = {}
    for moment in moments:
        telegram = read(meter.telegram(moment))
        line = next(ln for ln in telegram.raw.decode().splitlines() if ln.startswith("0-0:1.0.0"))
        seen[moment] = line
        assert telegram.timestamp is not None
        # Aware datetimes in a repeated hour never compare equal across zones (PEP 495).
        assert telegram.timestamp.astimezone(UTC) == moment
        gas = telegram["0-1:24.2.3"]
        assert gas.timestamp is not None
        assert timedelta(0) <= moment - gas.timestamp < timedelta(minutes=5)
    if before.month == 3:
        assert seen[before] == "0-0:1.0.0(260329015959W)"
        assert seen[after] == "0-0:1.0.0(260329030000S)"
    else:
        assert seen[before] == "0-0:1.0.0(261025025959S)"
        assert seen[after] == "0-0:1.0.0(261025020000W)"
        in_summer = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
        in_winter = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
        assert seen[in_summer] == "0-0:1.0.0(261025023000S)"
        assert seen[in_winter] == "0-0:1.0.0(261025023000W)"


def test_quarter_demand_resets_and_matches_power() -> None:
    """1.4.0: 0 at each quarter boundary, then the import since then over the whole quarter."""
    start = local(2026, 2, 10, 18, 0)
    meter = SimulatedMeter(start=start, seed=6)
    powers: list[int] = []
    rising = previous = 0
    for index, telegram in enumerate(run(meter, start, start + timedelta(minutes=45), 1)):
        demand = watts(telegram, "1-0:1.4.0")
        if index % 900 == 0:
            assert demand == 0
            powers = []
        else:
            # Each second's energy is the power shown in the telegram before it (W * 1 s).
            assert demand == sum(powers) // 900
            rising += demand > previous
        previous = demand
        powers.append(watts(telegram, "1-0:1.7.0"))
    assert rising > 100


def quarter_peaks(telegrams: list[Telegram]) -> Iterator[tuple[Telegram, int, datetime]]:
    """(telegram at a quarter boundary, average W of the quarter that closed, its start)."""
    previous: tuple[int, datetime] | None = None
    for telegram in telegrams:
        moment = telegram.timestamp
        assert moment is not None
        if moment.minute % 15 or moment.second:
            continue
        if previous is not None:
            yield telegram, 4 * (imported_wh(telegram) - previous[0]), previous[1]
        previous = (imported_wh(telegram), moment)


def test_month_peak_is_the_highest_closed_quarter() -> None:
    """From the 1st of the month, 1.6.0 is the highest closed quarter-hour average so far."""
    start = local(2026, 5, 1)
    meter = SimulatedMeter(start=start, seed=9)
    telegrams = list(run(meter, start, start + timedelta(days=3), 300))
    first_peak = telegrams[0]["1-0:1.6.0"]
    assert (first_peak.timestamp, first_peak.value) == (start, Decimal("0.000"))
    best, best_start = 0, start
    updates = 0
    for telegram, average, quarter_start in quarter_peaks(telegrams):
        if average > best:
            best, best_start = average, quarter_start
            updates += 1
        peak = telegram["1-0:1.6.0"]
        assert (peak.value, peak.timestamp) == (Decimal(best) / 1000, best_start)
    assert updates > 1
    assert best > 1500


def test_month_change_resets_peak_and_extends_history() -> None:
    """At the month change the peak goes into 98.1.0 (oldest dropped) and 1.6.0 restarts."""
    start = local(2026, 5, 31, 20, 0)
    boundary = local(2026, 6, 1)
    meter = SimulatedMeter(start=start, seed=10)
    telegrams = list(run(meter, start, boundary + timedelta(hours=6), 300))
    before = next(t for t in telegrams if t.timestamp == boundary - timedelta(minutes=5))
    at = next(t for t in telegrams if t.timestamp == boundary)
    last_quarter = next(t for t in telegrams if t.timestamp == boundary - timedelta(minutes=15))
    old_history = before["0-0:98.1.0"].entries
    new_history = at["0-0:98.1.0"].entries
    assert old_history is not None and new_history is not None
    assert len(old_history) == len(new_history) == 13
    assert new_history[:12] == old_history[1:]
    closing = 4 * (imported_wh(at) - imported_wh(last_quarter))
    may_peak = before["1-0:1.6.0"]
    newest = new_history[-1]
    assert newest.period_end == boundary
    assert newest.period == "2026-05"
    if closing > watts(before, "1-0:1.6.0"):
        assert (newest.timestamp, newest.value) == (last_quarter.timestamp, Decimal(closing) / 1000)
    else:
        assert (newest.timestamp, newest.value) == (may_peak.timestamp, may_peak.value)
    june_peak = at["1-0:1.6.0"]
    assert (june_peak.timestamp, june_peak.value) == (boundary, Decimal("0.000"))
    best = 0
    june = [t for t in telegrams if t.timestamp is not None and t.timestamp >= boundary]
    for telegram, average, _ in quarter_peaks(june):
        best = max(best, average)
        assert watts(telegram, "1-0:1.6.0") == best


def test_history_is_thirteen_seeded_months_oldest_first() -> None:
    """98.1.0 starts with 13 months before the start month, each peak inside its month."""
    start = local(2026, 7, 15, 12, 0)
    telegram = Reader()(SimulatedMeter(start=start, seed=1).telegram(start))
    entries = telegram["0-0:98.1.0"].entries
    assert entries is not None
    assert [entry.period for entry in entries] == [
        f"{2025 + (5 + i) // 12}-{(5 + i) % 12 + 1:02d}" for i in range(13)
    ]
    assert entries[-1].period_end == local(2026, 7, 1)
    for entry in entries:
        assert entry.timestamp is not None and entry.period_end is not None
        assert entry.timestamp < entry.period_end
        assert entry.timestamp.strftime("%Y-%m") == entry.period
        assert entry.timestamp.minute % 15 == 0 and entry.timestamp.second == 0
        assert isinstance(entry.value, Decimal) and Decimal(2) < entry.value < Decimal(8)
    peak = telegram["1-0:1.6.0"]
    assert peak.timestamp is not None
    assert local(2026, 7, 1) <= peak.timestamp < local(2026, 7, 15, 12, 0)


def test_mbus_captures_every_five_minutes() -> None:
    """Gas and water readings carry the last 5-minute boundary and change only there."""
    start = local(2026, 11, 3, 6, 58, 30)
    meter = SimulatedMeter(start=start, seed=12)
    previous: Telegram | None = None
    for telegram in run(meter, start, start + timedelta(minutes=40), 1):
        moment = telegram.timestamp
        assert moment is not None
        for obis in ("0-1:24.2.3", "0-2:24.2.1"):
            captured = telegram[obis].timestamp
            assert captured is not None
            assert captured.minute % 5 == 0 and captured.second == 0
            assert timedelta(0) <= moment - captured < timedelta(minutes=5)
            if previous is not None and captured == previous[obis].timestamp:
                assert telegram[obis].value == previous[obis].value
        previous = telegram
    assert telegram.mbus[0].name == "gas" and telegram.mbus[1].name == "water"


def test_s211_has_only_l1_objects() -> None:
    """The single-phase S211 sends L1 power, voltage and current only."""
    start = local(2026, 4, 2, 9, 30)
    telegram = Reader()(SimulatedMeter("s211", start=start, seed=1).telegram(start))
    assert telegram.header == "FLU5\\253770234_A"
    codes = set(telegram.objects)
    assert {"1-0:21.7.0", "1-0:22.7.0", "1-0:32.7.0", "1-0:31.7.0"} <= codes
    assert not [code for code in codes if code.endswith(L2_L3)]
    equipment = telegram.value("0-0:96.1.1")
    assert isinstance(equipment, str) and equipment.startswith("1SAG11")


def test_object_order_and_widths_match_a_real_t211() -> None:
    """Same objects in the same order with the same field widths as a captured T211."""
    start = local(2023, 4, 21, 16, 53, 28)
    data = SimulatedMeter(start=start, seed=1).telegram(start).decode()
    lines = data.split("\r\n")
    codes = [line.split("(")[0] for line in lines[2:-2]]
    assert codes == [
        "0-0:96.1.4", "0-0:96.1.1", "0-0:1.0.0", "1-0:1.8.1", "1-0:1.8.2", "1-0:2.8.1",
        "1-0:2.8.2", "0-0:96.14.0", "1-0:1.4.0", "1-0:1.6.0", "0-0:98.1.0", "1-0:1.7.0",
        "1-0:2.7.0", "1-0:21.7.0", "1-0:41.7.0", "1-0:61.7.0", "1-0:22.7.0", "1-0:42.7.0",
        "1-0:62.7.0", "1-0:32.7.0", "1-0:52.7.0", "1-0:72.7.0", "1-0:31.7.0", "1-0:51.7.0",
        "1-0:71.7.0", "0-0:96.3.10", "0-0:17.0.0", "1-0:31.4.0", "0-0:96.13.0", "0-1:24.1.0",
        "0-1:96.1.1", "0-1:24.4.0", "0-1:24.2.3", "0-2:24.1.0", "0-2:96.1.1", "0-2:24.2.1",
    ]  # fmt: skip
    shapes = {line.split("(")[0]: line for line in lines}
    expected = {
        "1-0:1.8.1": r"\(\d{6}\.\d{3}\*kWh\)",
        "1-0:2.8.2": r"\(\d{6}\.\d{3}\*kWh\)",
        "1-0:1.4.0": r"\(\d\d\.\d{3}\*kW\)",
        "1-0:1.6.0": r"\(\d{12}[SW]\)\(\d\d\.\d{3}\*kW\)",
        "1-0:1.7.0": r"\(\d\d\.\d{3}\*kW\)",
        "1-0:62.7.0": r"\(\d\d\.\d{3}\*kW\)",
        "1-0:32.7.0": r"\(\d{3}\.\d\*V\)",
        "1-0:71.7.0": r"\(\d{3}\.\d\d\*A\)",
        "0-0:96.14.0": r"\(000[12]\)",
        "0-0:98.1.0": r"\(13\)\(1-0:1\.6\.0\)\(1-0:1\.6\.0\)"
        r"(\(\d{12}[SW]\)\(\d{12}[SW]\)\(\d\d\.\d{3}\*kW\)){13}",
        "0-1:24.2.3": r"\(\d{12}[SW]\)\(\d{5}\.\d{3}\*m3\)",
        "0-2:24.2.1": r"\(\d{12}[SW]\)\(\d{5}\.\d{3}\*m3\)",
    }
    for code, pattern in expected.items():
        assert re.fullmatch(re.escape(code) + pattern, shapes[code]), shapes[code]
    assert shapes["0-1:96.1.1"].startswith("0-1:96.1.1(37464C4F")  # "7FLO"
    assert shapes["0-2:96.1.1"].startswith("0-2:96.1.1(38534554")  # "8SET"
    assert shapes["0-0:96.1.1"].startswith("0-0:96.1.1(315341473331")  # "1SAG31"
    assert lines[0] == "/FLU5\\253769484_A" and lines[1] == ""


def test_mbus_channels_follow_installed_meters() -> None:
    """Without gas, water is on channel 1; without both, no M-Bus objects at all."""
    start = local(2026, 4, 2, 9, 30)
    water_only = Reader()(SimulatedMeter(start=start, gas=False).telegram(start))
    assert [(d.channel, d.name) for d in water_only.mbus] == [(1, "water")]
    assert "0-1:24.2.1" in water_only
    bare = Reader()(SimulatedMeter(start=start, gas=False, water=False).telegram(start))
    assert bare.mbus == ()
    assert not [code for code in bare.objects if code.startswith("0-1:")]


def test_same_seed_same_telegrams() -> None:
    """Two meters with the same seed and start send identical bytes; another seed differs."""
    start = local(2026, 8, 1, 6, 0)

    def sample(seed: int) -> list[bytes]:
        meter = SimulatedMeter(start=start, seed=seed)
        return list(stream(meter, start, 600, timedelta(seconds=7)))

    first = sample(42)
    assert first == sample(42)
    assert first != sample(43)


def test_stream_spaces_telegrams_by_interval() -> None:
    """stream() yields count telegrams, interval apart, starting at start."""
    start = local(2026, 8, 1, 6, 0)
    meter = SimulatedMeter(start=start)
    read = Reader()
    moments = [read(data).timestamp for data in stream(meter, start, 4, timedelta(seconds=10))]
    assert moments == [start + timedelta(seconds=10 * i) for i in range(4)]


def test_time_never_goes_backwards() -> None:
    """Asking for an earlier moment, or a naive one, is a usage error."""
    start = local(2026, 8, 1, 6, 0)
    meter = SimulatedMeter(start=start)
    meter.telegram(start + timedelta(seconds=5))
    assert meter.telegram(start + timedelta(seconds=5, milliseconds=500)) == meter.telegram(
        start + timedelta(seconds=5)
    )
    with pytest.raises(UsageError):
        meter.telegram(start)
    with pytest.raises(UsageError):
        meter.telegram(datetime(2026, 8, 1, 7, 0))  # naive on purpose
    with pytest.raises(UsageError):
        SimulatedMeter(start=datetime(2026, 8, 1, 7, 0))
    with pytest.raises(UsageError):
        SimulatedMeter("x211", start=start)  # type: ignore[arg-type]


def test_stream_steps_in_elapsed_time_across_dst() -> None:
    """stream() from a local start walks through the repeated autumn hour second by second."""
    start = local(2026, 10, 25, 2, 59, 58)  # CEST, the first of the two 02:59:58
    meter = SimulatedMeter(start=start)
    read = Reader()
    stamps = [
        read(data).raw.decode().split("0-0:1.0.0(")[1][:13]
        for data in stream(meter, start, 4, timedelta(seconds=1))
    ]
    assert stamps == ["261025025958S", "261025025959S", "261025020000W", "261025020001W"]
