"""What the decoder makes of each kind of data line: values, units, timestamps, profiles, M-Bus."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from p1mqtt.protocol import (
    CATALOGUE,
    Country,
    Reading,
    TimestampParser,
    describe,
    format_timestamp,
)
from telegrams import COMPOSED, TEXT_MESSAGE, decode_one, fixture, with_crc

BRUSSELS = ZoneInfo("Europe/Brussels")


def _brussels(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=BRUSSELS)  # type: ignore[misc]


def _line(line: str, **options: object) -> object:
    """Decode one data line in a minimal telegram and return its object."""
    obis = line[: line.index("(")]
    return decode_one(with_crc(f"/ABC5TEST\r\n\r\n{line}\r\n!"), **options)[obis]


# --- numbers and units -------------------------------------------------------------------------


def test_energy_registers_are_exact_decimals() -> None:
    """Registers are Decimals with the meter's digits and the unit as sent."""
    telegram = decode_one(fixture("be_fluvius_emucs171_spec_example_3ph_gas_water"))
    register = telegram["1-0:1.8.2"]
    assert register.value == Decimal("15.758")
    assert isinstance(register.value, Decimal)
    assert str(register.value) == "15.758"
    assert register.unit == "kWh"
    assert str(telegram["1-0:1.8.1"].value) == "0.034"
    assert str(telegram["1-0:32.7.0"].value) == "234.7"
    assert telegram["1-0:32.7.0"].unit == "V"


def test_trailing_zeros_are_kept() -> None:
    """Decimals keep the meter's precision: 000.000 is 0.000, not 0."""
    telegram = decode_one(COMPOSED["be_t211_full"])
    assert str(telegram["1-0:2.7.0"].value) == "0.000"
    assert str(telegram["1-0:1.8.2"].value) == "3437.690"


def test_currents_integer_and_two_decimals() -> None:
    """e-MUCS 1.3 integer currents and 1.4+ currents with 2 decimals both read exactly."""
    old = decode_one(fixture("be_fluvius_t211_50213_gas_2020"))
    new = decode_one(fixture("be_fluvius_t211_50217_water_ch1_gas_ch2"))
    assert (old["1-0:51.7.0"].value, old["1-0:51.7.0"].unit) == (Decimal(3), "A")
    assert (new["1-0:51.7.0"].value, new["1-0:51.7.0"].unit) == (Decimal("7.74"), "A")


def test_units_other_than_kwh_are_kept() -> None:
    """Austrian Wh, W, varh and var units come through unchanged, never converted."""
    telegram = decode_one(fixture("at_sagemcom_t210dr_wh_units"))
    assert (telegram["1-0:1.8.0"].value, telegram["1-0:1.8.0"].unit) == (Decimal(6545766), "Wh")
    assert telegram["1-0:1.7.0"].unit == "W"
    assert telegram["1-0:3.8.0"].unit == "varh"
    assert telegram["1-0:4.7.0"].unit == "var"


def test_limiter_in_kva() -> None:
    """The limiter threshold keeps the kVA unit some meters use."""
    assert decode_one(COMPOSED["be_iskra_wallonia"])["0-0:17.0.0"].unit == "kVA"


def test_value_without_unit_has_unit_none() -> None:
    """A value with no '*unit' has unit None."""
    assert _line("1-0:1.8.1(000123.456)").unit is None  # type: ignore[attr-defined]


def test_negative_value() -> None:
    """A negative number keeps its sign."""
    assert _line("1-0:2.7.0(-00.250*kW)").value == Decimal("-0.250")  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["NaN", "1e5", "1_000", "12.", ".5x", "0x10", "Infinity", "²³"])
def test_non_plain_numbers_are_not_numbers(text: str) -> None:
    """Only plain decimal notation becomes a number; other text never becomes a reading."""
    obj = _line(f"1-0:1.8.1({text}*kWh)")
    assert not isinstance(getattr(obj, "value", None), Decimal)


def test_integer_codes_are_ints() -> None:
    """Tariff indicator, breaker, valve and device type are ints: 0002 is 2."""
    telegram = decode_one(COMPOSED["be_t211_full"])
    assert telegram["0-0:96.14.0"].value == 2
    assert telegram["0-0:96.3.10"].value == 1
    assert telegram["0-1:24.4.0"].value == 1
    assert telegram["0-2:24.1.0"].value == 7
    assert telegram["1-0:94.32.1"].value == 400


def test_belgian_tariff_labels_are_day_night() -> None:
    """Tariff registers are keyed by number; labels say day/night in BE and low/normal in NL."""
    definition = CATALOGUE["1-0:1.8.1"]
    assert definition.key == "energy_import_tariff_1"
    assert describe(definition, Country.BE).endswith("(day)")
    assert describe(CATALOGUE["1-0:1.8.2"], Country.BE).endswith("(night)")
    assert describe(definition, Country.NL).endswith("(low)")
    assert decode_one(COMPOSED["be_t211_full"]).country is Country.BE
    assert decode_one(COMPOSED["lu_smarty"]).country is Country.LU
    assert decode_one(fixture("nl_kaifa_dsmr42")).country is Country.NL


# --- timestamps ---------------------------------------------------------------------------------


def test_telegram_time_is_aware_winter() -> None:
    """0-0:1.0.0 with W is an aware datetime at UTC+1 in Brussels."""
    telegram = decode_one(fixture("be_fluvius_t211_50213_gas_2020"))
    moment = telegram.timestamp
    assert moment == _brussels(2020, 2, 25, 18, 4, 27)
    assert moment is not None
    assert moment.utcoffset() == timedelta(hours=1)
    assert telegram["0-0:1.0.0"].value == moment
    assert telegram["0-0:1.0.0"].has_timestamp


def test_telegram_time_is_aware_summer() -> None:
    """A timestamp with S is UTC+2 in Brussels."""
    moment = decode_one(fixture("be_fluvius_t211_50217_water_ch1_gas_ch2")).timestamp
    assert moment is not None
    assert moment.astimezone(UTC) == datetime(2023, 4, 21, 14, 53, 28, tzinfo=UTC)


def test_repeated_autumn_hour_s_and_w_are_an_hour_apart() -> None:
    """2025-10-26 02:30:00S and 02:30:00W are one hour apart (S first)."""
    telegram = decode_one(COMPOSED["be_dst_autumn"])
    summer = telegram["1-0:1.6.0"].timestamp
    winter = telegram["0-0:1.0.0"].timestamp
    assert summer is not None
    assert winter is not None
    assert summer.astimezone(UTC) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert winter.astimezone(UTC) == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    assert winter.timestamp() - summer.timestamp() == 3600
    assert (summer.utcoffset(), winter.utcoffset()) == (timedelta(hours=2), timedelta(hours=1))


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("251026023000S", datetime(2025, 10, 26, 0, 30, tzinfo=UTC)),
        ("251026023000W", datetime(2025, 10, 26, 1, 30, tzinfo=UTC)),
        ("251026015959S", datetime(2025, 10, 25, 23, 59, 59, tzinfo=UTC)),
        ("251026030000W", datetime(2025, 10, 26, 2, 0, tzinfo=UTC)),
        ("250330030000S", datetime(2025, 3, 30, 1, 0, tzinfo=UTC)),
        ("250330015959W", datetime(2025, 3, 30, 0, 59, 59, tzinfo=UTC)),
    ],
)
def test_dst_transitions(text: str, utc: datetime) -> None:
    """The S/W letter places times around both DST switches at the right instant."""
    moment = TimestampParser("Europe/Brussels").parse(text)
    assert moment is not None
    assert moment.astimezone(UTC) == utc


def test_format_timestamp_round_trips_the_repeated_hour() -> None:
    """format_timestamp writes S for the first and W for the second 02:30 of 26 October."""
    parser = TimestampParser()
    for text in ("251026023000S", "251026023000W"):
        moment = parser.parse(text)
        assert moment is not None
        assert format_timestamp(moment) == text


def test_no_letter_read_in_default_zone() -> None:
    """A timestamp without S/W (Iskra BE) is read in Brussels time."""
    telegram = decode_one(COMPOSED["be_iskra_wallonia"])
    assert telegram.timestamp == _brussels(2026, 1, 15, 20, 10, 9)
    assert telegram.timestamp is not None
    assert telegram.timestamp.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    ("zone", "offset"),
    [
        ("UTC", timedelta(0)),
        ("Europe/Amsterdam", timedelta(hours=1)),
        ("America/New_York", timedelta(hours=-5)),
        (ZoneInfo("Asia/Tokyo"), timedelta(hours=9)),
        (timezone(timedelta(hours=3)), timedelta(hours=3)),
    ],
)
def test_zone_parameter_used_for_no_letter_times(zone: object, offset: timedelta) -> None:
    """The decoder's zone (name or tzinfo) is used for timestamps without the S/W letter."""
    telegram = decode_one(COMPOSED["be_iskra_wallonia"], zone=zone)
    moment = telegram.timestamp
    assert moment is not None
    assert moment.replace(tzinfo=None) == datetime(2026, 1, 15, 20, 10, 9)
    assert moment.utcoffset() == offset


def test_zone_parameter_names_the_zone_of_lettered_times() -> None:
    """Times with S/W are reported in the configured zone: Amsterdam gives the same instant."""
    brussels = decode_one(COMPOSED["be_dst_autumn"]).timestamp
    amsterdam = decode_one(COMPOSED["be_dst_autumn"], zone="Europe/Amsterdam").timestamp
    assert brussels is not None
    assert amsterdam is not None
    assert amsterdam.tzinfo == ZoneInfo("Europe/Amsterdam")
    assert amsterdam.astimezone(UTC) == brussels.astimezone(UTC)


def test_letter_in_zone_without_dst_is_trusted() -> None:
    """In a zone without DST the meter's letter still counts: S is one hour ahead of W."""
    parser = TimestampParser("UTC")
    summer = parser.parse("250715120000S")
    winter = parser.parse("250715120000W")
    assert summer is not None
    assert winter is not None
    assert winter.timestamp() - summer.timestamp() == 3600


def test_letter_contradicting_the_date_is_trusted() -> None:
    """An S on a winter date (as in the e-MUCS 1.7.1 example) is read as summer time (UTC+2)."""
    moment = TimestampParser().parse("200305122139S")
    assert moment is not None
    assert moment.utcoffset() == timedelta(hours=2)
    assert moment.astimezone(UTC) == datetime(2020, 3, 5, 10, 21, 39, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["632525252525W", "35255255255255255S", "000101000000W", "700101010000W"]
)
def test_placeholder_timestamps_are_none(text: str) -> None:
    """Placeholder timestamps mean 'no timestamp': None, never an error."""
    assert TimestampParser().parse(text) is None


@pytest.mark.parametrize(
    "text",
    ["251332000000W", "250230120000W", "251026250000S", "2510260230", "25102602300XW", "", "S"],
)
def test_malformed_timestamps_are_none(text: str) -> None:
    """Impossible dates and wrong shapes give None rather than raising."""
    assert TimestampParser().parse(text) is None


@pytest.mark.parametrize(
    ("obis", "has_unit"),
    [("1-0:1.6.0", True), ("0-1:24.2.3", False), ("0-2:24.2.1", False), ("0-3:24.2.1", True)],
)
def test_placeholder_in_captured_objects(obis: str, has_unit: bool) -> None:
    """Captured values with placeholder times keep their value, timestamp None, has_timestamp."""
    obj = decode_one(COMPOSED["be_placeholders"])[obis]
    assert obj.timestamp is None
    assert obj.has_timestamp
    assert obj.value == Decimal(0)
    assert (obj.unit is not None) is has_unit


def test_placeholder_entries_in_peak_history() -> None:
    """Peak history entries with 18-character or Sagemcom placeholders have timestamp None."""
    history = decode_one(COMPOSED["be_placeholders"])["0-0:98.1.0"]
    assert history.entries is not None
    assert [entry.timestamp for entry in history.entries[:2]] == [None, None]
    assert [entry.value for entry in history.entries] == [
        Decimal("0.000"),
        Decimal("0.000"),
        Decimal("3.772"),
    ]
    assert [entry.period for entry in history.entries] == ["2024-09", "2024-10", "2025-10"]
    assert history.entries[2].timestamp == _brussels(2025, 10, 29, 0, 45)


def test_zero_timestamp_of_mcs_meter_is_none() -> None:
    """An all-zero clock (000000000000W) is not a date: timestamp None, no error."""
    telegram = decode_one(fixture("nl_mcs_dsmr50"))
    assert telegram.timestamp is None
    assert telegram["0-0:1.0.0"].has_timestamp


# --- profile generic: 98.1.0 peak history and 99.97.0 power failure log ------------------------


def test_peak_history_zero_entries() -> None:
    """0-0:98.1.0(0)(1-0:1.6.0)(1-0:1.6.0)() is an empty history, not an error."""
    history = decode_one(fixture("be_fluvius_t211_50217_water_ch1_gas_ch2"))["0-0:98.1.0"]
    assert history.value == 0
    assert history.entries == ()
    assert history.unit == "kW"


def test_peak_history_one_entry() -> None:
    """One entry: period, its end (first TST), the moment of the peak and the value."""
    history = decode_one(fixture("be_fluvius_s211_50217_gas_peak_history_1"))["0-0:98.1.0"]
    assert history.value == 1
    assert history.entries is not None
    (entry,) = history.entries
    assert entry.period == "2022-12"
    assert entry.period_end == _brussels(2023, 1, 1)
    assert entry.timestamp == _brussels(2022, 12, 29, 14, 30)
    assert (entry.value, entry.unit) == (Decimal("4.875"), "kW")
    assert entry.extra == ()


def test_peak_history_thirteen_entries_in_telegram_order() -> None:
    """13 entries are all kept, in the order sent (oldest first on real meters)."""
    history = decode_one(COMPOSED["be_t211_full"])["0-0:98.1.0"]
    assert history.value == 13
    assert history.entries is not None
    periods = [entry.period for entry in history.entries]
    assert periods == [f"2024-{month:02d}" for month in range(1, 13)] + ["2025-01"]
    assert history.entries[11].value == Decimal("7.211")


def test_peak_history_real_13_months_with_placeholder() -> None:
    """A real 13-entry history keeps its Sagemcom placeholder entry with timestamp None."""
    history = decode_one(fixture("be_fluvius_t211_50217_13month_history_placeholder_ts"))[
        "0-0:98.1.0"
    ]
    assert history.entries is not None
    assert len(history.entries) == 13
    assert history.entries[0].timestamp is None
    assert history.entries[0].period == "2023-07"
    assert history.entries[-1].timestamp == _brussels(2025, 4, 16, 20, 30)


def test_peak_history_newest_first_order_kept() -> None:
    """The e-MUCS 1.7.1 example lists entries newest first; the decoder keeps that order."""
    history = decode_one(fixture("be_fluvius_emucs171_spec_example_3ph_gas_water"))["0-0:98.1.0"]
    assert history.entries is not None
    assert [entry.period for entry in history.entries] == ["2020-04", "2020-03", "2020-02"]


def test_peak_history_five_capture_objects() -> None:
    """The L+G E660 layout: period end, billing counter, import peak and export peak per entry."""
    telegram = decode_one(COMPOSED["be_lg_e660_peaks"])
    history = telegram["0-0:98.1.0"]
    assert history.value == 2
    assert history.entries is not None
    first, second = history.entries
    assert first.period == "2025-05"
    assert first.timestamp == _brussels(2025, 5, 12, 8, 45)
    assert (first.value, first.unit) == (Decimal("1.211"), "kW")
    assert first.extra == (Reading(Decimal("2.004"), "kW", _brussels(2025, 5, 25, 13)),)
    assert second.period_end == _brussels(2025, 7, 1)
    billing = telegram["0-0:98.1.1"]
    assert billing.entries is not None
    (entry,) = billing.entries
    assert entry.timestamp is None
    assert (entry.value, entry.unit, entry.period) == (Decimal("2631.00"), "kWh", "2025-06")
    assert entry.extra == (Reading(Decimal("1091.45"), "kWh"),)


def test_peak_history_without_header_eon() -> None:
    """E.ON Hungary's 98.1.0 without count or capture list reads as one entry of 19 values."""
    history = decode_one(fixture("hu_eon_sagemcom"))["0-0:98.1.0"]
    assert history.value == 1
    assert history.entries is not None
    (entry,) = history.entries
    assert entry.timestamp == _brussels(2023, 7, 1)
    assert (entry.value, entry.unit) == (Decimal("40.777"), "kWh")
    assert len(entry.extra) == 18
    assert entry.extra[-1] == Reading(Decimal("3.400"), "kW")
    assert entry.extra[5] == Reading(Decimal("0.030"), "kvarh")


@pytest.mark.parametrize("name", ["nl_failure_log_empty_brackets", "nl_failure_log_zero"])
def test_power_failure_log_empty_forms(name: str) -> None:
    """1-0:99.97.0() and 1-0:99.97.0(0)(0-0:96.7.19) are both an empty log."""
    log = decode_one(COMPOSED[name])["1-0:99.97.0"]
    assert log.value == 0
    assert log.entries == ()


def test_power_failure_log_entries() -> None:
    """Log entries: end time of the failure and its duration in seconds."""
    log = decode_one(fixture("nl_iskra_am550_power_failure_log"))["1-0:99.97.0"]
    assert log.entries is not None
    assert len(log.entries) == log.value
    first = log.entries[0]
    assert first.unit == "s"
    assert isinstance(first.value, Decimal)
    assert first.timestamp is not None


def test_power_failure_log_with_placeholder_times() -> None:
    """Kaifa's log entries dated 2000-01-01 (000101...) have timestamp None but keep values."""
    log = decode_one(fixture("nl_kaifa_dsmr42"))["1-0:99.97.0"]
    assert log.entries is not None
    assert log.value == 7
    assert [entry.timestamp is None for entry in log.entries] == [False] * 3 + [True] * 4
    assert log.entries[3].value == Decimal(2147483647)


# --- layouts that deviate ----------------------------------------------------------------------


def test_dsmr22_gas_on_continuation_line() -> None:
    """DSMR 2.2 gas: 0-n:24.3.0 header line plus the value on the next line is one reading."""
    telegram = decode_one(fixture("nl_iskra_mt382_dsmr22_no_crc"))
    gas = telegram["0-2:24.3.0"]
    assert (gas.value, gas.unit) == (Decimal("13368.864"), "m3")
    assert gas.timestamp == _brussels(2021, 11, 22, 21)
    assert telegram.keys["0-2:24.3.0"] == "gas_volume"
    assert telegram.unparsed == ()


def test_iskra_value_first_month_peak() -> None:
    """Iskra's reversed 1-0:1.6.0(08.832*kW)(260112223000) gives value 8.832 kW and its time."""
    peak = decode_one(COMPOSED["be_iskra_wallonia"])["1-0:1.6.0"]
    assert (peak.value, peak.unit) == (Decimal("8.832"), "kW")
    assert peak.timestamp == _brussels(2026, 1, 12, 22, 30)
    assert peak.values == ()


def test_month_peak_in_spec_order() -> None:
    """1-0:1.6.0(TST)(value) gives the value and the moment of the peak."""
    peak = decode_one(fixture("be_fluvius_emucs171_spec_example_3ph_gas_water"))["1-0:1.6.0"]
    assert (peak.value, peak.unit) == (Decimal("2.589"), "kW")
    assert peak.timestamp == _brussels(2020, 5, 9, 13, 45, 58)


def test_two_values_in_one_bracket_pair() -> None:
    """Sibelga's 1-1:31.4.0(65.0*A,-65.0*A) gives value 65.0 A and both values in values."""
    threshold = decode_one(COMPOSED["be_sibelga"])["1-1:31.4.0"]
    assert (threshold.value, threshold.unit) == (Decimal("65.0"), "A")
    assert threshold.values == (Reading(Decimal("65.0"), "A"), Reading(Decimal("-65.0"), "A"))


def test_two_bracket_groups_luxembourg() -> None:
    """Luxembourg's 1-1:31.4.0(040*A)(-040*A) gives both values in values."""
    threshold = decode_one(COMPOSED["lu_smarty"])["1-1:31.4.0"]
    assert (threshold.value, threshold.unit) == (Decimal(40), "A")
    assert threshold.values == (Reading(Decimal(40), "A"), Reading(Decimal(-40), "A"))


# --- octet strings -------------------------------------------------------------------------------


def test_hex_octet_strings_decoded_with_raw_kept() -> None:
    """Equipment ids and text messages are decoded from hex; the hex stays in raw."""
    telegram = decode_one(COMPOSED["be_t211_full"])
    assert telegram["0-0:96.1.1"].value == "1SAG3100716957"
    assert telegram["0-0:96.1.1"].raw == "3153414733313030373136393537"
    assert telegram["0-0:96.13.0"].value == TEXT_MESSAGE
    assert telegram["0-0:96.13.0"].raw == TEXT_MESSAGE.encode().hex().upper()
    assert telegram["0-0:96.1.2"].value == "541440012345678900"
    assert telegram["0-1:96.1.1"].value == "7FLO2123015189"


def test_empty_text_message() -> None:
    """An empty text message 0-0:96.13.0() is the empty string with raw ''."""
    message = decode_one(fixture("be_fluvius_t211_50213_gas_2020"))["0-0:96.13.0"]
    assert (message.value, message.raw) == ("", "")


def test_non_text_octets_stay_hex() -> None:
    """Hex that does not decode to printable text is kept as sent (value == raw)."""
    obj = _line("0-0:96.1.1(91524109)")
    assert obj.value == "91524109"  # type: ignore[attr-defined]
    assert obj.raw == "91524109"  # type: ignore[attr-defined]


def test_hex_encoded_version() -> None:
    """Iskra's version 0-0:96.1.4(3231313130) reads as "21110" with the hex in raw."""
    version = decode_one(COMPOSED["be_iskra_wallonia"])["0-0:96.1.4"]
    assert (version.value, version.raw) == ("21110", "3231313130")


def test_plain_version() -> None:
    """A plain version 50217 stays "50217" (not decoded as hex), raw None."""
    version = decode_one(fixture("be_fluvius_t211_50217_water_ch1_gas_ch2"))["0-0:96.1.4"]
    assert (version.value, version.raw) == ("50217", None)
    assert decode_one(fixture("nl_kaifa_dsmr42"))["1-3:0.2.8"].value == "42"


def test_blank_version_of_spaces() -> None:
    """Sibelga's version of 48 hex spaces reads as the empty string, raw kept."""
    version = decode_one(COMPOSED["be_sibelga"])["0-0:96.1.4"]
    assert version.value == ""
    assert version.raw == "20" * 48


# --- unknown codes and unparsed lines -------------------------------------------------------------


def test_unknown_obis_kept_with_obis_key() -> None:
    """Codes the catalogue does not know are kept, keyed obis_<code>."""
    telegram = decode_one(COMPOSED["unknown_and_unparsed"])
    unknown = telegram["1-0:96.50.68"]
    assert (unknown.value, unknown.unit, unknown.definition) == (Decimal("1234.5"), "kW", None)
    assert telegram.keys["1-0:96.50.68"] == "obis_1_0_96_50_68"
    assert telegram["0-0:96.99.9"].value == "ABC"
    assert telegram.keys["0-0:96.99.9"] == "obis_0_0_96_99_9"


def test_unparsed_lines_and_repeated_codes_kept() -> None:
    """Lines that are no object, and a second line for the same code, land in unparsed."""
    telegram = decode_one(COMPOSED["unknown_and_unparsed"])
    assert telegram.unparsed == ("this is not an object", "1-0:1.8.1(000002.000*kWh)")
    assert telegram["1-0:1.8.1"].value == Decimal("1.000")


def test_objects_in_telegram_order() -> None:
    """Telegram.objects and by_key() follow the meter's line order."""
    telegram = decode_one(COMPOSED["be_two_gas"])
    assert list(telegram.objects) == [
        "0-0:96.1.4",
        "0-0:1.0.0",
        "0-1:24.1.0",
        "0-1:24.2.3",
        "0-2:24.1.0",
        "0-2:24.2.3",
        "0-3:24.1.0",
        "0-3:24.2.1",
        "0-4:96.3.10",
    ]
    assert [key for key, _ in telegram.by_key()][:2] == ["emucs_version", "timestamp"]


def test_header_without_slash() -> None:
    """Telegram.header is the identification line without '/', backslash included."""
    assert decode_one(fixture("nl_sagemcom_t210d_cx2000")).header == "Ene5\\SAGEMCOM CX2000-"
    assert decode_one(COMPOSED["be_lg_e660_peaks"]).header == "LG_E660_Fluvius_3N400V"


def test_telegram_accessors() -> None:
    """get(), value(), 'in' and iteration behave like a read-only mapping of objects."""
    telegram = decode_one(COMPOSED["be_dst_autumn"])
    assert "1-0:1.8.1" in telegram
    assert "1-0:2.8.1" not in telegram
    assert telegram.get("1-0:2.8.1") is None
    assert telegram.value("1-0:2.8.1") is None
    assert telegram.value("1-0:1.8.1") == Decimal("100.000")
    assert [obj.obis for obj in telegram] == list(telegram.objects)


# --- M-Bus devices ------------------------------------------------------------------------------


def test_medium_from_device_type_not_channel() -> None:
    """Water on channel 1 and gas on channel 2 are named by their 24.1.0 device type."""
    telegram = decode_one(fixture("be_fluvius_t211_50217_water_ch1_gas_ch2"))
    assert [(d.channel, d.name, d.device_type) for d in telegram.mbus] == [
        (1, "water", 7),
        (2, "gas", 3),
    ]
    assert telegram.keys["0-1:24.2.1"] == "water_volume"
    assert telegram.keys["0-2:24.2.3"] == "gas_volume"
    assert telegram.keys["0-2:24.4.0"] == "gas_valve_state"
    assert telegram["0-2:24.2.3"].channel == 2
    water, gas = telegram.mbus
    assert water.equipment_id == "8SET0000837964"
    assert gas.reading is telegram["0-2:24.2.3"]


def test_two_gas_meters_are_gas_and_gas_2() -> None:
    """A second gas meter is named gas_2; water on channel 3 is still water."""
    telegram = decode_one(COMPOSED["be_two_gas"])
    assert [(d.channel, d.name) for d in telegram.mbus] == [
        (1, "gas"),
        (2, "gas_2"),
        (3, "water"),
        (4, "mbus4"),
    ]
    assert telegram.keys["0-2:24.2.3"] == "gas_2_volume"
    assert telegram.keys["0-3:24.2.1"] == "water_volume"
    assert telegram.keys["0-4:96.3.10"] == "mbus4_switch_state"


def test_two_gas_meters_real_dutch_telegram() -> None:
    """The Dutch two-M-Bus fixture: placeholder gas meter on channel 1 is gas, live one gas_2."""
    telegram = decode_one(fixture("nl_iskra_am550_two_mbus_placeholder_gas"))
    assert [d.name for d in telegram.mbus] == ["gas", "gas_2"]
    assert telegram["0-2:24.2.1"].value == Decimal("246.138")
    assert telegram["0-1:24.2.1"].timestamp is None


def test_unknown_device_type_gives_mbus_name() -> None:
    """A channel without 24.1.0 is named mbus<n> and has no medium."""
    telegram = decode_one(COMPOSED["be_iskra_wallonia"])
    (device,) = telegram.mbus
    assert (device.name, device.medium, device.device_type) == ("mbus1", None, None)


def test_no_mbus_objects_no_devices() -> None:
    """A telegram without 0-n: objects has no M-Bus devices."""
    assert decode_one(fixture("be_fluvius_t211_50213_no_mbus_2020")).mbus == ()


@pytest.mark.parametrize(
    "line",
    ["0-0:98.1.0(\u00b2)(1-0:1.6.0)(1-0:1.6.0)(1)", "1-0:99.97.0(\u00b9)(0-0:96.7.19)(\u00b2)(1)"],
)
def test_non_ascii_count_never_raises(line: str) -> None:
    """A superscript digit (a corrupted latin-1 byte) as a profile count is text, not a crash."""
    obj = _line(line)
    assert obj.entries is not None  # type: ignore[attr-defined]
    assert obj.entries[0].value in {"\u00b2", "\u00b9"}  # type: ignore[attr-defined]


def test_non_ascii_integer_code_kept_as_text() -> None:
    """A superscript digit where an integer code belongs is kept as text, never int()'d."""
    assert _line("0-0:96.14.0(\u00b2)").value == "\u00b2"  # type: ignore[attr-defined]
