"""The capacity tariff figures: quarter hours, projection, shedding, the 12-month average."""

import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from p1mqtt.capacity import (
    CapacityStatus,
    billed_months,
    capacity_status,
    capacity_warning,
    exact_json,
    peak_threshold,
    project_quarter,
    quarter_bounds,
    rolling_average,
    shed_needed,
)
from p1mqtt.computed import ComputedReadings
from p1mqtt.config.model import CapacityConfig, TotalsConfig
from p1mqtt.protocol import Decoder, ProfileEntry, Telegram, encode_telegram, format_timestamp
from p1mqtt.totals import local_midnight
from telegrams import decode_one, decoded, fixture, fixture_names

BRUSSELS = ZoneInfo("Europe/Brussels")
HEADER = "FLU5\\253769484_A"
D = Decimal


def at(*parts: int, fold: int = 0) -> datetime:
    """A Brussels wall-clock time from (year, month, day[, hour, minute, second])."""
    year, month, day, *rest = parts
    hour, minute, second = (*rest, 0, 0, 0)[:3]
    return datetime(year, month, day, hour, minute, second, tzinfo=BRUSSELS, fold=fold)


def entry(year: int, month: int, value: str, peak: datetime | None = None) -> ProfileEntry:
    """A peak history entry for ``month`` as the decoder builds it (period end = next 1st)."""
    end = local_midnight(datetime(year + month // 12, month % 12 + 1, 1).date(), BRUSSELS)
    return ProfileEntry(peak or at(year, month, 10, 18, 15), D(value), "kW", end)


def history_line(entries: list[tuple[str, str, str]]) -> str:
    """A ``0-0:98.1.0`` line from (period end, peak time, value) triples."""
    groups = "".join(f"({end})({when})({value}*kW)" for end, when, value in entries)
    return f"0-0:98.1.0({len(entries)})(1-0:1.6.0)(1-0:1.6.0){groups or '()'}"


def meter(
    moment: datetime,
    *,
    demand: str = "01.000",
    power: str | None = "03.000",
    peak: str = "(260203181500W)(03.200*kW)",
    history: list[str] | None = None,
) -> list[str]:
    """The lines of a Belgian telegram at ``moment`` with the capacity objects."""
    lines = [
        "0-0:96.1.4(50217)",
        f"0-0:1.0.0({format_timestamp(moment, BRUSSELS)})",
        "1-0:1.8.1(001234.567*kWh)",
        f"1-0:1.4.0({demand}*kW)",
        f"1-0:1.6.0{peak}",
        *(history if history is not None else [history_line([])]),
    ]
    if power is not None:
        lines.append(f"1-0:1.7.0({power}*kW)")
    return lines


def decode(lines: list[str]) -> Telegram:
    """One telegram built from ``lines``."""
    return decode_one(encode_telegram(HEADER, lines))


def status(lines: list[str], **options: Decimal) -> CapacityStatus:
    """The capacity status of the telegram built from ``lines`` (which must have one)."""
    found = capacity_status(decode(lines), **options)
    assert found is not None
    return found


# --- quarter hours -----------------------------------------------------------------------------


def test_quarter_bounds_align_on_quarter_hours() -> None:
    """12:07:30 lies in the quarter 12:00-12:15, in local time with its offset."""
    start, end = quarter_bounds(at(2026, 2, 10, 12, 7, 30))
    assert start.isoformat() == "2026-02-10T12:00:00+01:00"
    assert end.isoformat() == "2026-02-10T12:15:00+01:00"


def test_a_boundary_moment_starts_the_new_quarter() -> None:
    """12:15:00 exactly is the first second of 12:15-12:30."""
    start, end = quarter_bounds(at(2026, 2, 10, 12, 15))
    assert (start, end) == (at(2026, 2, 10, 12, 15), at(2026, 2, 10, 12, 30))


def test_quarters_in_the_repeated_autumn_hour_are_distinct() -> None:
    """On 2026-10-25 02:20 happens twice: once at +02:00 and once at +01:00, in two quarters."""
    first = quarter_bounds(at(2026, 10, 25, 2, 20))
    second = quarter_bounds(at(2026, 10, 25, 2, 20, fold=1))
    assert [m.isoformat() for m in first] == [
        "2026-10-25T02:15:00+02:00",
        "2026-10-25T02:30:00+02:00",
    ]
    assert [m.isoformat() for m in second] == [
        "2026-10-25T02:15:00+01:00",
        "2026-10-25T02:30:00+01:00",
    ]


def test_the_quarter_before_the_spring_gap_ends_at_three() -> None:
    """On 2026-03-29 the quarter 01:45-02:00 ends at 03:00+02:00: 02:00 does not exist."""
    start, end = quarter_bounds(at(2026, 3, 29, 1, 59, 59))
    assert start.isoformat() == "2026-03-29T01:45:00+01:00"
    assert end.isoformat() == "2026-03-29T03:00:00+02:00"


def test_quarter_bounds_need_an_aware_time() -> None:
    """A naive datetime has no quarter hour in any zone."""
    with pytest.raises(ValueError, match="aware"):
        quarter_bounds(datetime(2026, 2, 10, 12, 0))


# --- projection and shedding -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("average", "power", "elapsed", "expected"),
    [
        ("1.000", "3.000", 300, "3.000"),
        ("0.500", "1.000", 100, "1.389"),
        ("2.000", "0.000", 450, "2.000"),
        ("0.000", "4.500", 0, "4.500"),
        ("2.351", "0.000", 549, "2.351"),
        ("0.032", "0.524", 56, "0.523"),
    ],
)
def test_projection_formula(average: str, power: str, elapsed: int, expected: str) -> None:
    """projected = average so far + power * (900 - t) / 900, to the watt."""
    assert project_quarter(D(average), D(power), elapsed) == D(expected)


def test_projection_equals_the_elapsed_average_form() -> None:
    """With A the average over the elapsed t seconds, (A*t + P*(900-t))/900 gives the same."""
    elapsed, power = 300, D("2.400")
    energy_kws = D(900)  # imported in the first 300 s: 0.25 kWh
    meter_value = energy_kws / 900  # what 1-0:1.4.0 shows: 1.000 kW
    elapsed_average = energy_kws / elapsed  # 3.000 kW over the 300 s
    by_formula = (elapsed_average * elapsed + power * (900 - elapsed)) / 900
    assert project_quarter(meter_value, power, elapsed) == by_formula == D("2.6")


@pytest.mark.parametrize("elapsed", [-1, 900])
def test_projection_needs_a_time_inside_the_quarter(elapsed: int) -> None:
    """Elapsed seconds outside 0..899 are a programming error."""
    with pytest.raises(ValueError, match="elapsed_s"):
        project_quarter(D(1), D(1), elapsed)


@pytest.mark.parametrize(
    ("projected", "threshold", "power", "elapsed", "expected"),
    [
        ("3.000", "2.500", "3.000", 300, "0.750"),
        ("3.000", "2.700", "3.000", 300, "0.450"),
        ("2.501", "2.500", "1.000", 100, "0.002"),
        ("2.611", "2.500", "1.000", 890, "1.000"),
        ("2.500", "2.500", "3.000", 300, "0.000"),
        ("2.000", "2.500", "3.000", 300, "0.000"),
    ],
)
def test_shed_formula(
    projected: str, threshold: str, power: str, elapsed: int, expected: str
) -> None:
    """shed = (projected - threshold) * 900 / (900 - t), rounded up, at most the power drawn."""
    assert shed_needed(D(projected), D(threshold), D(power), elapsed) == D(expected)


def test_shedding_the_computed_amount_lands_on_the_threshold() -> None:
    """Lowering the power by shed_kw brings the projection down to (at most) the threshold."""
    average, power, elapsed, threshold = D("1.200"), D("4.000"), 420, D("3.000")
    projected = project_quarter(average, power, elapsed)
    shed = shed_needed(projected, threshold, power, elapsed)
    assert project_quarter(average, power - shed, elapsed) <= threshold
    assert project_quarter(average, power - shed + D("0.002"), elapsed) > threshold


def test_threshold_is_the_billed_peak_less_the_margin() -> None:
    """max(month peak, floor) - margin: a new peak under 2.5 kW costs nothing."""
    assert peak_threshold(D("4.000"), margin_kw=D("0.5")) == D("3.500")
    assert peak_threshold(D("1.000")) == D("2.5")
    assert peak_threshold(D("1.000"), margin_kw=D("0.2")) == D("2.3")
    assert peak_threshold(D("1.000"), floor_kw=D(0)) == D("1.000")


# --- the 12-month average ----------------------------------------------------------------------


def test_no_history_averages_the_running_month_alone() -> None:
    """A new meter: the running month's peak is the average, raised to the floor."""
    assert rolling_average([], D("3.100"), month=at(2026, 5, 3)) == D("3.100")
    assert rolling_average([], D("1.000"), month=at(2026, 5, 3)) == D("2.500")


def test_nothing_known_gives_the_floor() -> None:
    """No history and no month peak: the minimum that is always billed."""
    assert rolling_average([], None) == D("2.500")
    assert billed_months([], None) == ()


def test_five_months_of_history_average_over_six() -> None:
    """With 5 completed months the mean is over those and the running month, each floored."""
    history = [
        entry(2025, 12, "3.000"),
        entry(2026, 1, "4.000"),
        entry(2026, 2, "2.000"),
        entry(2026, 3, "5.000"),
        entry(2026, 4, "3.500"),
    ]
    months = billed_months(history, D("1.000"), month=at(2026, 5, 20))
    assert months == (D("3.000"), D("4.000"), D("2.5"), D("5.000"), D("3.500"), D("2.5"))
    assert rolling_average(history, D("1.000"), month=at(2026, 5, 20)) == D("3.417")


def test_thirteen_months_of_history_use_the_last_eleven() -> None:
    """Of 13 history months only the 11 before the running month count: 12 in all."""
    history = [entry(2025, 4, "9.000"), entry(2025, 5, "9.000")]
    history += [entry(2025 + (m > 12), (m - 1) % 12 + 1, "3.000") for m in range(6, 17)]
    history[8] = entry(2025, 12, "6.000")
    assert len(history) == 13
    months = billed_months(history, D("4.000"), month=at(2026, 5, 2))
    assert len(months) == 12
    assert rolling_average(history, D("4.000"), month=at(2026, 5, 2)) == D("3.333")


def test_history_order_does_not_matter() -> None:
    """Newest first (the e-MUCS example) and oldest first (real meters) give the same average."""
    history = [entry(2026, 3, "4.000"), entry(2026, 2, "6.000"), entry(2026, 1, "3.000")]
    forward = rolling_average(list(reversed(history)), D("2.800"), month=at(2026, 4, 9))
    assert rolling_average(history, D("2.800"), month=at(2026, 4, 9)) == forward == D("3.950")


def test_placeholder_entries_count_at_the_floor() -> None:
    """An entry with a placeholder peak time and 0.000 kW is a month billed at 2.5 kW."""
    history = [
        ProfileEntry(None, D("0.000"), "kW", local_midnight(at(2026, 4, 1).date(), BRUSSELS))
    ]
    assert billed_months(history, D("3.500"), month=at(2026, 4, 9)) == (D("2.5"), D("3.500"))


def test_months_missing_from_the_history_are_left_out() -> None:
    """A gap in the history is not guessed: the mean is over the months present."""
    history = [entry(2026, 1, "3.000"), entry(2026, 3, "5.000")]
    assert rolling_average(history, D("4.000"), month=at(2026, 4, 9)) == D("4.000")
    assert len(billed_months(history, D("4.000"), month=at(2026, 4, 9))) == 3


def test_unusable_entries_are_skipped_and_duplicates_keep_the_highest() -> None:
    """Entries with no month or no number are ignored; a month given twice counts once."""
    history = [
        ProfileEntry(None, D("7.000"), "kW", None),
        ProfileEntry(at(2026, 2, 3, 19, 0), "garbage", "kW", None),
        ProfileEntry(at(2026, 2, 3, 19, 0), D("3.000"), "kW", None),
        entry(2026, 2, "4.000"),
        ProfileEntry(at(2026, 1, 9, 8, 0), D("3000"), "W", None),
    ]
    assert billed_months(history, None, month=at(2026, 3, 1)) == (D("3"), D("4.000"))


def test_without_a_running_month_the_latest_entries_count() -> None:
    """With no reference month, the 11 most recent history months are taken."""
    history = [entry(2025, 1, "9.000"), entry(2025, 2, "9.000")]
    history += [entry(2025, month, "3.000") for month in range(3, 13)]
    history.append(entry(2026, 1, "3.000"))
    assert len(history) == 13
    assert len(billed_months(history, D("3.000"))) == 12
    assert rolling_average(history, D("3.000")) == D("3.000")


# --- the status of a telegram ------------------------------------------------------------------


def test_spec_example_status() -> None:
    """The e-MUCS 1.7.1 example: newest-first history of 3 months, exact figures."""
    found = capacity_status(decode_one(fixture("be_fluvius_emucs171_spec_example_3ph_gas_water")))
    assert found is not None
    assert found.quarter_average_kw == D("2.351")
    assert found.quarter_start.isoformat() == "2020-05-12T13:45:00+02:00"
    assert found.quarter_end.isoformat() == "2020-05-12T14:00:00+02:00"
    assert found.quarter_elapsed_s == 549
    assert found.quarter_projected_kw == D("2.351")
    assert found.month_peak_kw == D("2.589")
    assert found.month_peak_at is not None
    assert found.month_peak_at.isoformat() == "2020-05-09T13:45:58+02:00"
    # (3.695 + 5.980 + 4.318 + 2.589) / 4
    assert (found.rolling_average_kw, found.rolling_months) == (D("4.146"), 4)
    assert (found.threshold_kw, found.peak_warning, found.shed_kw) == (D("2.589"), False, D(0))


def test_thirteen_month_history_with_placeholders() -> None:
    """A T211 with 13 entries (one a placeholder from 2023): 11 in the window plus May."""
    found = capacity_status(
        decode_one(fixture("be_fluvius_t211_50217_13month_history_placeholder_ts"))
    )
    assert found is not None
    assert found.rolling_months == 12
    # 3.297 3.090 3.378 3.649 4.113 4.428 7.211 5.494 4.987 4.323 3.535 and May 1.194 -> 2.5
    assert found.rolling_average_kw == D("4.167")
    assert found.threshold_kw == D("2.5")


def test_landis_gyr_history_with_gaps_and_a_long_placeholder() -> None:
    """L+G E360: the 18-character placeholder month counts at the floor; missing months do not."""
    lines = meter(
        datetime(2026, 6, 24, 16, 12, 49, tzinfo=BRUSSELS),
        demand="00.141",
        power="00.444",
        peak="(260606101500S)(03.440*kW)",
        history=[
            "0-0:98.1.0(9)(1-0:1.6.0)(1-0:1.6.0)(250801000000S)(35255255255255255S)(00.000*kW)"
            "(251101000000W)(251029150000W)(04.122*kW)(251201000000W)(251121183000W)(03.933*kW)"
            "(260101000000W)(251223140000W)(04.699*kW)(260201000000W)(260128151500W)(04.556*kW)"
            "(260301000000W)(260220133000W)(03.884*kW)(260401000000S)(260303184500W)(03.597*kW)"
            "(260501000000S)(260410131500S)(03.298*kW)(260601000000S)(260511141500S)(02.438*kW)"
        ],
    )
    found = status(lines)
    assert found.rolling_months == 10
    assert found.rolling_average_kw == D("3.653")
    assert found.quarter_projected_kw == D("0.206")


def test_five_capture_history_uses_the_import_peak() -> None:
    """L+G E660 sends import and export peaks per month; the import peak is the billed one."""
    lines = meter(
        at(2025, 7, 16, 10, 0, 10),
        demand="00.000",
        power="00.000",
        peak="(250708104500S)(04.430*kW)",
        history=[
            "0-0:98.1.0(1)(0-0:0.1.0)(1-0:1.6.0)(1-0:1.6.0)(1-0:2.6.0)(1-0:2.6.0)"
            "(250701000000S)(15)(250604084500S)(03.452*kW)(250629150000S)(09.633*kW)"
        ],
    )
    found = status(lines)
    assert billed_months(
        decode(lines)["0-0:98.1.0"].entries or (), D("4.430"), month=at(2025, 7, 16)
    ) == (D("3.452"), D("4.430"))
    assert found.rolling_average_kw == D("3.941")


def test_short_and_empty_history_lines() -> None:
    """One history month, and ``0-0:98.1.0(0)(1-0:1.6.0)(1-0:1.6.0)()``: the running month."""
    found = capacity_status(decode_one(fixture("be_fluvius_s211_50217_gas_peak_history_1")))
    assert found is not None
    assert (found.rolling_average_kw, found.rolling_months) == (D("3.724"), 2)
    lines = meter(at(2026, 2, 10, 18, 5), history=["0-0:98.1.0(0)(1-0:1.6.0)(1-0:1.6.0)()"])
    assert (status(lines).rolling_average_kw, status(lines).rolling_months) == (D("3.200"), 1)


def test_meters_without_capacity_objects_give_nothing() -> None:
    """e-MUCS 1.3 meters have no 1-0:1.4.0 nor 1-0:1.6.0: no capacity message."""
    assert capacity_status(decode_one(fixture("be_fluvius_t211_50213_no_mbus_2020"))) is None
    lines = [line for line in meter(at(2026, 2, 10, 18, 5)) if not line.startswith("1-0:1.6.0")]
    assert capacity_status(decode(lines)) is None


def test_a_telegram_without_time_gives_nothing() -> None:
    """Quarters and months are counted from 0-0:1.0.0; without it nothing is computed."""
    lines = [line for line in meter(at(2026, 2, 10, 18, 5)) if not line.startswith("0-0:1.0.0")]
    assert capacity_status(decode(lines)) is None


def test_missing_power_gives_no_projection() -> None:
    """Without 1-0:1.7.0 the projection is unknown, so no warning and nothing to shed."""
    found = status(meter(at(2026, 2, 10, 18, 5), power=None))
    assert (found.quarter_projected_kw, found.peak_warning, found.shed_kw) == (None, False, D(0))


def test_peak_warning_and_margin() -> None:
    """Projection 3.000 kW against a 3.200 kW peak: a warning only with a 0.5 kW margin."""
    lines = meter(at(2026, 2, 10, 18, 5), demand="01.000", power="03.000")
    calm = status(lines)
    assert (calm.quarter_projected_kw, calm.threshold_kw) == (D("3.000"), D("3.200"))
    assert (calm.peak_warning, calm.shed_kw) == (False, D("0.000"))
    warned = status(lines, margin_kw=D("0.5"))
    assert (warned.threshold_kw, warned.peak_warning, warned.shed_kw) == (
        D("2.700"),
        True,
        D("0.450"),
    )


def test_a_low_month_peak_warns_only_above_the_floor() -> None:
    """With a month peak of 1 kW, a 2.2 kW quarter costs nothing; a 2.6 kW one does."""
    low = "(260203181500W)(01.000*kW)"
    assert not status(
        meter(at(2026, 2, 10, 18, 0), demand="00.000", power="02.200", peak=low)
    ).peak_warning
    risky = status(meter(at(2026, 2, 10, 18, 0), demand="00.000", power="02.600", peak=low))
    assert (risky.peak_warning, risky.shed_kw) == (True, D("0.100"))


def test_floor_can_be_configured() -> None:
    """floor_kw=0 averages the raw peaks (for a tariff without a minimum)."""
    lines = meter(at(2026, 2, 10, 18, 5), peak="(260203181500W)(01.000*kW)")
    assert status(lines, floor_kw=D(0)).rolling_average_kw == D("1.000")


def test_value_first_month_peak_without_dst_letter() -> None:
    """Iskra sends ``1-0:1.6.0(08.832*kW)(260112223000)``; the time is still found."""
    found = status(meter(at(2026, 1, 15, 20, 10, 9), peak="(08.832*kW)(260112223000)"))
    assert found.month_peak_kw == D("8.832")
    assert found.month_peak_at is not None
    assert found.month_peak_at.isoformat() == "2026-01-12T22:30:00+01:00"


def test_last_months_peak_is_not_this_months() -> None:
    """A 1-0:1.6.0 stamped before the month began (not yet reset) counts as no peak yet."""
    lines = meter(
        at(2026, 3, 1, 0, 5),
        peak="(260228201500W)(05.000*kW)",
        history=[history_line([("260301000000W", "260228201500W", "05.000")])],
    )
    found = status(lines)
    assert (found.month_peak_kw, found.month_peak_at) == (D("0.000"), None)
    assert (found.rolling_average_kw, found.threshold_kw) == (D("3.750"), D("2.5"))


def test_placeholder_month_peak_time() -> None:
    """A placeholder time on 1-0:1.6.0 leaves month_peak_at empty but keeps the value."""
    found = status(meter(at(2026, 2, 10, 18, 5), peak="(632525252525W)(00.000*kW)"))
    assert (found.month_peak_kw, found.month_peak_at) == (D("0.000"), None)
    assert '"month_peak_at":null' in found.to_json()


def test_sequence_across_a_quarter_boundary() -> None:
    """Telegrams at 18:14:59, 18:15:00 and 18:15:01: the quarter changes at 18:15:00."""
    stream = b"".join(
        encode_telegram(HEADER, meter(moment, demand=demand, power="02.000"))
        for moment, demand in [
            (at(2026, 2, 10, 18, 14, 59), "01.998"),
            (at(2026, 2, 10, 18, 15, 0), "00.000"),
            (at(2026, 2, 10, 18, 15, 1), "00.002"),
        ]
    )
    found = [capacity_status(t) for t in decoded(Decoder().feed(stream))]
    assert [s.quarter_start.strftime("%H:%M") if s else None for s in found] == [
        "18:00",
        "18:15",
        "18:15",
    ]
    assert [s.quarter_elapsed_s if s else None for s in found] == [899, 0, 1]
    assert [s.quarter_projected_kw if s else None for s in found] == [
        D("2.000"),
        D("2.000"),
        D("2.000"),
    ]


def test_status_json_is_exact() -> None:
    """Decimals are JSON numbers digit for digit, times ISO 8601 with their offset."""
    found = capacity_status(decode_one(fixture("be_fluvius_emucs171_spec_example_3ph_gas_water")))
    assert found is not None
    text = found.to_json()
    payload = json.loads(text, parse_float=Decimal)
    assert '"quarter_average_kw":2.351' in text
    assert '"floor_kw":2.5' in text
    assert payload["rolling_average_kw"] == D("4.146")
    assert payload["time"] == "2020-05-12T13:54:09+02:00"
    assert payload["peak_warning"] is False
    assert list(payload) == list(found.to_dict())


def test_exact_json() -> None:
    """The JSON writer keeps decimals, drops the sign of zero and refuses unknown types."""
    text = exact_json({"a": D("-0.000"), "b": [D("1.50"), None, True], "c": (at(2026, 1, 1),)})
    assert text == '{"a":0.000,"b":[1.50,null,true],"c":["2026-01-01T00:00:00+01:00"]}'
    with pytest.raises(TypeError):
        exact_json({1, 2})
    with pytest.raises(ValueError, match="JSON"):
        exact_json(D("NaN"))


def test_the_cheap_warning_check_agrees_with_the_whole_status() -> None:
    """capacity_warning is capacity_status's peak_warning (None alike), on every fixture."""
    seen: set[bool] = set()
    options = [
        {},
        {"margin_kw": D("0.5")},
        {"margin_kw": D("3"), "floor_kw": D(0)},
    ]
    for name in fixture_names():
        for event in Decoder().feed(fixture(name)):
            telegram = getattr(event, "telegram", None)
            if telegram is None:
                continue
            for option in options:
                found = capacity_status(telegram, **option)
                expected = None if found is None else found.peak_warning
                assert capacity_warning(telegram, **option) is expected, name
                if expected is not None:
                    seen.add(expected)
    assert seen == {False, True}


# --- publication rate (ComputedReadings) -------------------------------------------------------


def capacity_payloads(interval: float, telegrams: list[tuple[float, Telegram]]) -> list[float]:
    """The monotonic times at which <prefix>/capacity is published for ``telegrams``."""
    computed = ComputedReadings(
        prefix="p",
        qos=1,
        capacity=CapacityConfig(publish_interval=interval),
        totals=TotalsConfig(enabled=False),
        state_file=None,
        zone="Europe/Brussels",
    )
    return [
        now
        for now, telegram in telegrams
        if any(m.topic == "p/capacity" for m in computed.messages(telegram, now))
    ]


def test_capacity_is_published_at_most_every_interval() -> None:
    """One telegram a second, 5 s interval: the first, then one every 5 s."""
    telegrams = [(float(n), decode(meter(at(2026, 2, 3, 10, 0, n)))) for n in range(12)]
    assert capacity_payloads(5.0, telegrams) == [0.0, 5.0, 10.0]
    assert capacity_payloads(0.0, telegrams) == [float(n) for n in range(12)]


def test_a_peak_warning_change_is_published_at_once() -> None:
    """Power jumps mid-interval: the warning goes out with that telegram, and its end too."""
    calm, busy = "00.500", "09.000"
    powers = [calm, calm, busy, busy, calm, calm]
    telegrams = [
        (float(n), decode(meter(at(2026, 2, 3, 10, 7, n), power=power)))
        for n, power in enumerate(powers)
    ]
    warnings = [capacity_status(t) for _, t in telegrams]
    assert [w.peak_warning for w in warnings if w is not None] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert capacity_payloads(60.0, telegrams) == [0.0, 2.0, 4.0]
