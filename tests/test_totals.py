"""Energy, gas and water totals per day, month and year, and their state file."""

import json
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import p1mqtt.totals as totals_module
from p1mqtt.protocol import Telegram, encode_telegram, format_timestamp
from p1mqtt.totals import (
    Totals,
    TotalsTracker,
    local_midnight,
    period_starts,
    select_registers,
)
from telegrams import decode_one

BRUSSELS = ZoneInfo("Europe/Brussels")
HEADER = "FLU5\\253769484_A"
D = Decimal
ORIGIN = datetime(2026, 1, 1, tzinfo=BRUSSELS)
"""Register values are counted from here: 3.6 kW, so 0.001 kWh per second."""


def at(*parts: int, fold: int = 0) -> datetime:
    """A Brussels wall-clock time from (year, month, day[, hour, minute, second])."""
    year, month, day, *rest = parts
    hour, minute, second = (*rest, 0, 0, 0)[:3]
    return datetime(year, month, day, hour, minute, second, tzinfo=BRUSSELS, fold=fold)


def register(moment: datetime, start: str = "1000.000") -> str:
    """A register that grows by 0.001 per real second since ORIGIN, as 10.3 digits."""
    seconds = int(moment.timestamp() - ORIGIN.timestamp())
    return f"{D(start) + D(seconds) / 1000:010.3f}"


def telegram(moment: datetime | None, **registers: str) -> Telegram:
    """A Belgian telegram at ``moment`` with import tariff 1 following :func:`register`.

    ``registers`` overrides or adds lines by OBIS code (``"1-0:1.8.2"="000500.000"``) or, for
    ``gas``/``water``, the M-Bus reading.
    """
    lines = ["0-0:96.1.4(50217)"]
    if moment is not None:
        lines.append(f"0-0:1.0.0({format_timestamp(moment, BRUSSELS)})")
        lines.append(f"1-0:1.8.1({registers.pop('import_1', register(moment))}*kWh)")
    lines.append(f"1-0:1.8.2({registers.pop('import_2', '000500.000')}*kWh)")
    lines.append(f"1-0:2.8.1({registers.pop('export_1', '000100.000')}*kWh)")
    lines.append(f"1-0:2.8.2({registers.pop('export_2', '000050.000')}*kWh)")
    gas = registers.pop("gas", None)
    if gas is not None:
        lines += ["0-1:24.1.0(003)", f"0-1:24.2.3(260101000000W)({gas}*m3)"]
    water = registers.pop("water", None)
    if water is not None:
        lines += ["0-2:24.1.0(007)", f"0-2:24.2.1(260101000000W)({water}*m3)"]
    lines += [f"{obis}({value})" for obis, value in registers.items()]
    return decode_one(encode_telegram(HEADER, lines))


def run(tracker: TotalsTracker, *moments: datetime) -> Totals:
    """Feed telegrams at ``moments``; return the totals of the last."""
    result = None
    for moment in moments:
        result = tracker.update(telegram(moment))
    assert result is not None
    return result


def imported(totals: Totals, period: str = "day") -> Decimal:
    """The import tariff 1 total of ``period``."""
    periods = {"day": totals.day, "month": totals.month, "year": totals.year}
    return periods[period].values["energy_import_tariff_1"]


# --- periods -----------------------------------------------------------------------------------


def test_period_starts_are_local_midnights() -> None:
    """Day, month and year of 2026-05-20 15:00 start at local midnights with their offsets."""
    day, month, year = period_starts(at(2026, 5, 20, 15), BRUSSELS)
    assert day.isoformat() == "2026-05-20T00:00:00+02:00"
    assert month.isoformat() == "2026-05-01T00:00:00+02:00"
    assert year.isoformat() == "2026-01-01T00:00:00+01:00"


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25)])
def test_dst_days_last_23_and_25_hours(day: date, hours: int) -> None:
    """From one local midnight to the next is 23 h in March and 25 h in October."""
    start = local_midnight(day, BRUSSELS)
    end = local_midnight(day + timedelta(days=1), BRUSSELS)
    assert end.timestamp() - start.timestamp() == hours * 3600


def test_period_starts_follow_the_configured_zone() -> None:
    """In UTC the day of 2026-05-20 00:30 Brussels time is still the 19th."""
    day, _, _ = period_starts(at(2026, 5, 20, 0, 30), ZoneInfo("UTC"))
    assert day.isoformat() == "2026-05-19T00:00:00+00:00"


def test_a_skipped_midnight_moves_to_the_first_real_moment() -> None:
    """Where DST skips midnight (Santiago, 2022-09-11) the day starts at 01:00."""
    start = local_midnight(date(2022, 9, 11), ZoneInfo("America/Santiago"))
    assert start.isoformat() == "2022-09-11T01:00:00-03:00"


def test_period_starts_need_an_aware_time() -> None:
    """A naive datetime belongs to no day."""
    with pytest.raises(ValueError, match="aware"):
        period_starts(datetime(2026, 1, 1), BRUSSELS)


# --- registers ---------------------------------------------------------------------------------


def test_tariff_registers_gas_and_water_are_tracked() -> None:
    """Import/export per tariff and the M-Bus gas and water volumes, with their units."""
    found = select_registers(telegram(at(2026, 1, 2), gas="00112.384", water="00872.234"))
    assert sorted(found) == [
        "energy_export_tariff_1",
        "energy_export_tariff_2",
        "energy_import_tariff_1",
        "energy_import_tariff_2",
        "gas_volume",
        "water_volume",
    ]
    assert found["gas_volume"] == (D("112.384"), "m3")


def test_total_registers_only_where_tariffs_are_absent() -> None:
    """1-0:1.8.0 counts for meters without tariff registers, not next to them."""
    both = telegram(at(2026, 1, 2), **{"1-0:1.8.0": "0002720.76*kWh"})
    assert "energy_import_total" not in select_registers(both)
    lines = [
        "0-0:1.0.0(260102000000W)",
        "1-0:1.8.0(0002720.76*kWh)",
        "1-0:2.8.0(0001155.91*kWh)",
        "1-0:1.7.0(00.000*kW)",
    ]
    alone = select_registers(decode_one(encode_telegram("LG_E660_Fluvius_3N400V", lines)))
    assert alone == {
        "energy_import_total": (D("2720.76"), "kWh"),
        "energy_export_total": (D("1155.91"), "kWh"),
    }


def test_a_dead_mbus_channel_is_no_reading() -> None:
    """A gas reading with a placeholder capture time is skipped, so it cannot fake a drop."""
    lines = [
        "0-0:1.0.0(260102000000W)",
        "1-0:1.8.1(000100.000*kWh)",
        "0-1:24.1.0(003)",
        "0-1:24.2.3(632525252525W)(00000.000)",
    ]
    found = select_registers(decode_one(encode_telegram(HEADER, lines)))
    assert sorted(found) == ["energy_import_tariff_1"]


# --- sequences ---------------------------------------------------------------------------------


def test_first_reading_is_a_partial_baseline() -> None:
    """Started mid-period: everything counts from the first reading and is marked partial."""
    tracker = TotalsTracker(None)
    first = run(tracker, at(2026, 5, 20, 15))
    assert [first.day.partial, first.month.partial, first.year.partial] == [True, True, True]
    assert imported(first) == D("0.000")
    later = run(tracker, at(2026, 5, 20, 15, 10))
    assert imported(later) == imported(later, "month") == D("0.600")
    assert dict(later.day.values)["energy_import"] == D("0.600")
    assert dict(later.day.values)["energy_export"] == D("0.000")


def test_day_boundary_while_running() -> None:
    """Across midnight the day restarts from the last reading; the month keeps counting."""
    tracker = TotalsTracker(None)
    run(tracker, at(2026, 5, 20, 15))
    before = run(tracker, at(2026, 5, 20, 23, 59, 59))
    after = run(tracker, at(2026, 5, 21, 0, 0, 1))
    assert imported(before) == D("32.399")
    assert imported(after) == D("0.002")
    assert after.day.partial is False
    assert after.day.start.isoformat() == "2026-05-21T00:00:00+02:00"
    assert imported(after, "month") == D("32.401")
    # Nothing falls between two days: the days add up to the month.
    assert imported(before) + imported(after) == imported(after, "month")


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 5, 20), 24)],
)
def test_a_whole_day_counts_its_real_hours(day: date, hours: int) -> None:
    """At 3.6 kW all day: 82.8 kWh on the 23-hour day, 90 on the 25-hour day, 86.4 otherwise."""
    tracker = TotalsTracker(None)
    start = local_midnight(day, BRUSSELS)
    end = local_midnight(day + timedelta(days=1), BRUSSELS)
    moments = [
        start - timedelta(seconds=1),
        start + timedelta(seconds=1),
        start + timedelta(hours=2, minutes=30),
        start + timedelta(hours=12),
        end - timedelta(seconds=1),
    ]
    last = run(tracker, *[m.astimezone(BRUSSELS) for m in moments])
    assert last.day.start == start
    assert last.day.partial is False
    assert imported(last) == D(hours * 3600) / 1000


@pytest.mark.parametrize("first", [date(2026, 3, 27), date(2026, 10, 23), date(2026, 12, 30)])
def test_every_telegram_is_in_the_day_month_and_year_of_its_time(first: date) -> None:
    """Every 7 minutes for four days across a DST change or New Year: no period start missed."""
    tracker = TotalsTracker(None)
    start = local_midnight(first, BRUSSELS)
    for step in range(4 * 24 * 60 // 7):
        moment = (start + timedelta(minutes=7 * step)).astimezone(BRUSSELS)
        totals = run(tracker, moment)
        assert (totals.day.start, totals.month.start, totals.year.start) == period_starts(
            moment, BRUSSELS
        ), moment


def test_the_repeated_autumn_hour_stays_in_its_day() -> None:
    """02:30 summer time and 02:30 winter time on 2026-10-25 are one hour apart, same day."""
    tracker = TotalsTracker(None)
    run(tracker, at(2026, 10, 24, 23, 59, 59), at(2026, 10, 25, 0, 0, 1))
    summer = run(tracker, at(2026, 10, 25, 2, 30))
    winter = run(tracker, at(2026, 10, 25, 2, 30, fold=1))
    assert imported(winter) - imported(summer) == D("3.600")
    assert winter.day.start.isoformat() == "2026-10-25T00:00:00+02:00"


def test_month_and_year_boundary() -> None:
    """New Year: day, month and year all restart from the last reading of the old year."""
    tracker = TotalsTracker(None)
    run(tracker, at(2026, 12, 31, 12))
    old = run(tracker, at(2026, 12, 31, 23, 59, 58))
    new = run(tracker, at(2027, 1, 1, 0, 0, 2))
    assert imported(old, "year") == imported(old, "month") != D(0)
    for period in ("day", "month", "year"):
        assert imported(new, period) == D("0.004")
        assert getattr(new, period).partial is False
    assert new.year.start.isoformat() == "2027-01-01T00:00:00+01:00"
    assert new.month.start.isoformat() == "2027-01-01T00:00:00+01:00"


def test_a_clock_set_back_does_not_reopen_the_old_day() -> None:
    """A telegram stamped before the current day began leaves the periods as they are."""
    tracker = TotalsTracker(None)
    run(tracker, at(2026, 5, 20, 23, 59, 59), at(2026, 5, 21, 0, 0, 5))
    back = tracker.update(telegram(at(2026, 5, 20, 23, 59, 50), import_1="0001005.000"))
    assert back is not None
    assert back.day.start.isoformat() == "2026-05-21T00:00:00+02:00"


def test_gas_and_water_totals() -> None:
    """Volumes count like energy, in m3."""
    tracker = TotalsTracker(None)
    tracker.update(telegram(at(2026, 5, 20, 8), gas="00112.384", water="00872.234"))
    later = tracker.update(telegram(at(2026, 5, 20, 9), gas="00113.000", water="00872.300"))
    assert later is not None
    values = dict(later.day.values)
    assert (values["gas_volume"], values["water_volume"]) == (D("0.616"), D("0.066"))
    assert dict(later.units)["gas_volume"] == "m3"


def test_a_register_appearing_later_marks_the_period_partial() -> None:
    """A gas meter seen only from the second day on counts from its first reading."""
    tracker = TotalsTracker(None)
    run(tracker, at(2026, 5, 20, 23, 59, 59))
    complete = run(tracker, at(2026, 5, 21, 0, 0, 1))
    assert complete.day.partial is False
    with_gas = tracker.update(telegram(at(2026, 5, 21, 8), gas="00100.000"))
    assert with_gas is not None
    assert with_gas.day.partial is True
    assert dict(with_gas.day.values)["gas_volume"] == D("0.000")


def test_meter_replacement_starts_a_new_baseline(caplog: pytest.LogCaptureFixture) -> None:
    """A register that drops is re-based with a warning; what it counted before is kept."""
    tracker = TotalsTracker(None)
    tracker.update(telegram(at(2026, 5, 20, 8), import_1="0005000.000"))
    tracker.update(telegram(at(2026, 5, 20, 9), import_1="0005001.000"))
    with caplog.at_level(logging.WARNING, logger="p1mqtt.totals"):
        dropped = tracker.update(telegram(at(2026, 5, 20, 10), import_1="0000000.500"))
    assert dropped is not None
    assert "went back" in caplog.text
    assert imported(dropped) == D("1.000")
    after = tracker.update(telegram(at(2026, 5, 20, 11), import_1="0000001.500"))
    assert after is not None
    assert imported(after) == imported(after, "year") == D("2.000")
    assert after.day.partial is True
    assert all(value >= 0 for value in after.day.values.values())


def test_replacement_at_a_period_change_never_goes_negative() -> None:
    """A meter replaced across midnight counts from its first reading on the new day."""
    tracker = TotalsTracker(None)
    run(tracker, at(2026, 5, 20, 23, 59, 59))
    new_day = tracker.update(telegram(at(2026, 5, 21, 0, 0, 1), import_1="0000000.100"))
    assert new_day is not None
    assert imported(new_day) == D("0.000")
    later = tracker.update(telegram(at(2026, 5, 21, 1), import_1="0000000.600"))
    assert later is not None
    assert imported(later) == D("0.500")


def test_nothing_without_time_or_registers() -> None:
    """No 0-0:1.0.0, or no register at all: no totals."""
    tracker = TotalsTracker(None)
    assert tracker.update(telegram(None)) is None
    bare = decode_one(encode_telegram(HEADER, ["0-0:1.0.0(260102000000W)", "1-0:1.7.0(00.1*kW)"]))
    assert tracker.update(bare) is None


def test_totals_json_is_exact() -> None:
    """Numbers keep their digits, times carry offsets, each period says whether it is partial."""
    tracker = TotalsTracker(None)
    result = run(tracker, at(2026, 5, 20, 15), at(2026, 5, 20, 15, 0, 10))
    payload = json.loads(result.to_json(), parse_float=Decimal)
    assert payload["time"] == "2026-05-20T15:00:10+02:00"
    assert payload["zone"] == "Europe/Brussels"
    assert payload["day"]["start"] == "2026-05-20T00:00:00+02:00"
    assert payload["day"]["partial"] is True
    assert payload["day"]["values"]["energy_import_tariff_1"] == D("0.010")
    assert '"energy_import_tariff_1":0.010' in result.to_json()
    assert payload["units"]["energy_import_tariff_1"] == "kWh"
    assert list(payload) == ["time", "zone", "day", "month", "year", "units"]


# --- the state file ----------------------------------------------------------------------------


def test_restart_in_the_middle_continues_the_same_totals(tmp_path: Path) -> None:
    """A new tracker on the same state file gives what an uninterrupted one gives."""
    state = tmp_path / "totals.json"
    moments = [at(2026, 5, 20, 23, 59, 59), at(2026, 5, 21, 0, 0, 1), at(2026, 5, 21, 8)]
    first = TotalsTracker(state)
    run(first, *moments)
    first.flush()
    resumed = run(TotalsTracker(state), at(2026, 5, 21, 9))
    uninterrupted = run(TotalsTracker(None), *moments, at(2026, 5, 21, 9))
    assert resumed.day == uninterrupted.day
    assert resumed.month == uninterrupted.month
    assert imported(resumed) == D("32.401")


def test_restart_across_midnight_after_a_short_stop(tmp_path: Path) -> None:
    """Stopped at 23:58, back at 00:01: the new day counts from the last saved reading."""
    state = tmp_path / "totals.json"
    before = TotalsTracker(state)
    run(before, at(2026, 5, 20, 23, 58))
    before.flush()
    after = run(TotalsTracker(state), at(2026, 5, 21, 0, 1))
    assert after.day.partial is False
    assert imported(after) == D("0.180")


def test_restart_after_a_long_stop_marks_the_new_day_partial(tmp_path: Path) -> None:
    """Stopped over night: today counts from the first reading and says it is partial."""
    state = tmp_path / "totals.json"
    before = TotalsTracker(state)
    run(before, at(2026, 5, 20, 20))
    before.flush()
    after = run(TotalsTracker(state), at(2026, 5, 21, 8))
    assert (after.day.partial, imported(after)) == (True, D("0.000"))
    assert imported(after, "month") == D("43.200")


def test_missing_state_file_starts_fresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No file yet: a log line, then new baselines; the file appears at the first save."""
    state = tmp_path / "data" / "totals.json"
    with caplog.at_level(logging.INFO, logger="p1mqtt.totals"):
        tracker = TotalsTracker(state)
    assert "no state file" in caplog.text
    run(tracker, at(2026, 5, 20, 15))
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["version"] == 1
    base = D(saved["periods"]["day"]["base"]["energy_import_tariff_1"])
    assert base == D(register(at(2026, 5, 20, 15)))


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"version": 99}', '{"version": 1, "zone": "Europe/Brussels"}'],
)
def test_corrupt_state_file_is_tolerated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    """An unreadable state file is logged and replaced by new baselines."""
    state = tmp_path / "totals.json"
    state.write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="p1mqtt.totals"):
        tracker = TotalsTracker(state)
    assert "unreadable" in caplog.text
    result = run(tracker, at(2026, 5, 20, 15))
    assert result.day.partial is True
    assert json.loads(state.read_text(encoding="utf-8"))["version"] == 1


def test_state_for_another_zone_is_not_reused(tmp_path: Path) -> None:
    """Baselines taken at Brussels midnights are no use for UTC days: start again."""
    state = tmp_path / "totals.json"
    brussels = TotalsTracker(state)
    run(brussels, at(2026, 5, 20, 15))
    brussels.flush()
    utc = run(TotalsTracker(state, "UTC"), at(2026, 5, 20, 16))
    assert utc.day.partial is True
    assert utc.zone == "UTC"
    assert utc.day.start.isoformat() == "2026-05-20T00:00:00+00:00"


def test_state_is_written_atomically(tmp_path: Path) -> None:
    """After a save the file is whole JSON and no temporary file is left beside it."""
    state = tmp_path / "totals.json"
    tracker = TotalsTracker(state)
    run(tracker, at(2026, 5, 20, 15), at(2026, 5, 20, 15, 0, 1))
    tracker.flush()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["totals.json"]
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert D(saved["last"]["energy_import_tariff_1"]) == D(register(at(2026, 5, 20, 15, 0, 1)))
    assert saved["last_time"] == "2026-05-20T15:00:01+02:00"


def test_saves_are_throttled_except_at_period_changes(tmp_path: Path) -> None:
    """At most one routine save a minute of real time, but a new day is written at once."""
    state = tmp_path / "totals.json"
    clock = [0.0]

    def saved_time() -> str:
        return str(json.loads(state.read_text(encoding="utf-8"))["last_time"])

    def live(moment: datetime) -> None:
        """One telegram from a live meter: the computer's clock moves with the meter's."""
        clock[0] = moment.timestamp()
        run(tracker, moment)

    tracker = TotalsTracker(state, clock=lambda: clock[0])
    live(at(2026, 5, 20, 23, 58, 0))
    assert saved_time() == "2026-05-20T23:58:00+02:00"
    live(at(2026, 5, 20, 23, 58, 30))
    assert saved_time() == "2026-05-20T23:58:00+02:00"
    live(at(2026, 5, 20, 23, 59, 0))
    assert saved_time() == "2026-05-20T23:59:00+02:00"
    live(at(2026, 5, 21, 0, 0, 1))
    assert saved_time() == "2026-05-21T00:00:01+02:00"
    live(at(2026, 5, 21, 0, 0, 2))
    assert saved_time() == "2026-05-21T00:00:01+02:00"
    tracker.flush()
    assert saved_time() == "2026-05-21T00:00:02+02:00"


def test_a_backlog_is_not_saved_once_a_meter_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten minutes of queued telegrams taken in one real second: only the new day is written."""
    state = tmp_path / "totals.json"
    written: list[str] = []
    write = totals_module._write_atomically

    def counted(path: Path, text: str) -> None:
        written.append(json.loads(text)["last_time"])
        write(path, text)

    monkeypatch.setattr(totals_module, "_write_atomically", counted)
    tracker = TotalsTracker(state, clock=lambda: 100.0)
    start = at(2026, 5, 20, 23, 55, 0)
    run(tracker, *(start + timedelta(seconds=n) for n in range(600)))
    # The first telegram (nothing was saved yet), then the new day at once.
    assert written == ["2026-05-20T23:55:00+02:00", "2026-05-21T00:00:00+02:00"]
    tracker.flush()
    assert written[-1] == "2026-05-21T00:04:59+02:00"


def test_an_unwritable_state_file_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A save that fails (here: the directory is a file) logs a warning and totals go on."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    tracker = TotalsTracker(blocker / "totals.json")
    with caplog.at_level(logging.WARNING, logger="p1mqtt.totals"):
        result = run(tracker, at(2026, 5, 20, 15))
    assert "cannot write" in caplog.text
    assert imported(result) == D("0.000")
