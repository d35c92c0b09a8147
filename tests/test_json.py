"""The public JSON form of a telegram (``p1mqtt decode`` output, MQTT ``telegram`` payload)."""

import json
import re
from decimal import Decimal

import pytest

from p1mqtt.protocol import TelegramJsonEncoder, encode_telegram
from telegrams import (
    COMPOSED,
    decode_events,
    decode_one,
    decoded,
    fixture,
    project_telegrams,
    with_crc,
)

OBJECT_FIELDS = {
    "value",
    "unit",
    "timestamp",
    "raw",
    "values",
    "entries",
    "key",
    "channel",
    "medium",
}
ENTRY_FIELDS = {"timestamp", "value", "unit", "period", "period_end", "extra"}
READING_FIELDS = {"value", "unit", "timestamp"}


def _json(data: bytes) -> str:
    return TelegramJsonEncoder().encode(decode_one(data))


def _valid() -> dict[str, bytes]:
    return {
        name: data for name, data in project_telegrams().items() if decoded(decode_events(data))
    }


@pytest.mark.parametrize("name", sorted(_valid()))
def test_json_parses_and_has_documented_fields_only(name: str) -> None:
    """Every telegram's JSON parses with json.loads and uses only the documented fields."""
    text = _json(_valid()[name])
    assert "\n" not in text
    document = json.loads(text)
    assert set(document) <= {"header", "objects", "unparsed"}
    assert {"header", "objects"} <= set(document)
    for obis, obj in document["objects"].items():
        assert set(obj) <= OBJECT_FIELDS, obis
        assert {"value", "key"} <= set(obj), obis
        for reading in obj.get("values", []):
            assert set(reading) <= READING_FIELDS
        for entry in obj.get("entries", []):
            assert set(entry) <= ENTRY_FIELDS
            assert {"timestamp", "value"} <= set(entry)
            for reading in entry.get("extra", []):
                assert set(reading) <= READING_FIELDS


@pytest.mark.parametrize("name", sorted(_valid()))
def test_json_numbers_are_the_meters_digits(name: str) -> None:
    """Every number in the JSON equals the decoded Decimal exactly (no float artefacts)."""
    telegram = decode_one(_valid()[name])
    document = json.loads(TelegramJsonEncoder().encode(telegram), parse_float=Decimal)
    for obis, obj in telegram.objects.items():
        if isinstance(obj.value, Decimal):
            assert document["objects"][obis]["value"] == obj.value
            assert str(document["objects"][obis]["value"]) == format(obj.value, "f")


def test_json_exact_digits_text() -> None:
    """The JSON text carries 15.758 and 0.034 exactly as the meter sent them."""
    text = _json(fixture("be_fluvius_emucs171_spec_example_3ph_gas_water"))
    assert '"1-0:1.8.2":{"value":15.758,"unit":"kWh","key":"energy_import_tariff_2"}' in text
    assert '"value":0.034,' in text
    assert '"value":0.000,' in text
    assert "15.757999" not in text


def test_json_large_and_small_numbers_keep_digits() -> None:
    """Long registers and many decimals survive without exponent or rounding."""
    data = encode_telegram(
        "ABC5X", ["1-0:1.8.1(123456789.123456*kWh)", "1-0:1.8.2(0.000001*kWh)", "1-0:2.8.1(0*kWh)"]
    )
    text = _json(data)
    assert '"value":123456789.123456,' in text
    assert '"value":0.000001,' in text
    assert '"value":0,' in text
    assert re.search(r"[0-9][eE][-+]?[0-9]", text) is None


def test_json_object_layout() -> None:
    """An object is value, unit, timestamp, raw, values, entries, key, channel, medium in order."""
    document = json.loads(_json(COMPOSED["be_t211_full"]))
    objects = document["objects"]
    assert document["header"] == "FLU5\\253769484_A"
    assert objects["0-1:24.2.3"] == {
        "value": 4856.664,
        "unit": "m3",
        "timestamp": "2025-02-14T08:10:05+01:00",
        "key": "gas_volume",
        "channel": 1,
        "medium": "gas",
    }
    assert objects["0-0:96.1.1"] == {
        "value": "1SAG3100716957",
        "raw": "3153414733313030373136393537",
        "key": "equipment_id",
    }
    assert objects["0-0:1.0.0"] == {
        "value": "2025-02-14T08:15:12+01:00",
        "timestamp": "2025-02-14T08:15:12+01:00",
        "key": "timestamp",
    }
    assert objects["0-0:96.14.0"] == {"value": 2, "key": "tariff"}
    assert list(objects["1-0:1.6.0"]) == ["value", "unit", "timestamp", "key"]


def test_json_profile_entries() -> None:
    """98.1.0 entries carry timestamp, value, unit, period and period_end; extra when present."""
    objects = json.loads(_json(COMPOSED["be_lg_e660_peaks"]))["objects"]
    history = objects["0-0:98.1.0"]
    assert history["value"] == 2
    assert history["entries"][0] == {
        "timestamp": "2025-05-12T08:45:00+02:00",
        "value": 1.211,
        "unit": "kW",
        "period": "2025-05",
        "period_end": "2025-06-01T00:00:00+02:00",
        "extra": [{"value": 2.004, "unit": "kW", "timestamp": "2025-05-25T13:00:00+02:00"}],
    }


def test_json_placeholder_timestamp_is_null() -> None:
    """Placeholder timestamps are null in JSON; the field is present because the meter sent one."""
    objects = json.loads(_json(COMPOSED["be_placeholders"]))["objects"]
    assert objects["0-1:24.2.3"]["timestamp"] is None
    assert "unit" not in objects["0-1:24.2.3"]
    assert objects["1-0:1.6.0"]["timestamp"] is None
    assert objects["0-0:98.1.0"]["entries"][0]["timestamp"] is None
    assert objects["0-0:98.1.0"]["entries"][0]["period"] == "2024-09"


def test_json_empty_history_is_empty_list() -> None:
    """An empty peak history has value 0 and entries []."""
    objects = json.loads(_json(fixture("be_fluvius_t211_50217_water_ch1_gas_ch2")))["objects"]
    assert objects["0-0:98.1.0"] == {
        "value": 0,
        "unit": "kW",
        "entries": [],
        "key": "demand_import_peak_history",
    }


def test_json_values_list() -> None:
    """Objects with several values list them in values."""
    objects = json.loads(_json(COMPOSED["be_sibelga"]))["objects"]
    assert objects["1-1:31.4.0"]["values"] == [
        {"value": 65.0, "unit": "A"},
        {"value": -65.0, "unit": "A"},
    ]


def test_json_unparsed_only_when_present() -> None:
    """'unparsed' appears only when there were lines that are not objects."""
    assert "unparsed" not in json.loads(_json(COMPOSED["be_two_gas"]))
    document = json.loads(_json(COMPOSED["unknown_and_unparsed"]))
    assert document["unparsed"] == ["this is not an object", "1-0:1.8.1(000002.000*kWh)"]
    assert document["objects"]["1-0:96.50.68"]["key"] == "obis_1_0_96_50_68"


def test_json_medium_absent_for_unknown_device() -> None:
    """An M-Bus object of unknown device type has channel but no medium."""
    objects = json.loads(_json(COMPOSED["be_iskra_wallonia"]))["objects"]
    assert objects["0-1:96.3.10"] == {"value": 0, "key": "mbus1_switch_state", "channel": 1}


def test_json_strings_are_escaped() -> None:
    """Backslashes, quotes and non-ASCII text are valid JSON string escapes."""
    message = b'say "hi" \\ ok'.hex()
    data = with_crc(f'/ABC5\\x"y\xe9\r\n\r\n0-0:96.13.0({message})\r\n!')
    text = _json(data)
    assert text.isascii()
    document = json.loads(text)
    assert document["header"] == 'ABC5\\x"y\xe9'
    assert document["objects"]["0-0:96.13.0"]["value"] == 'say "hi" \\ ok'


def test_encoder_memo_follows_changed_lines() -> None:
    """One encoder over a stream gives each telegram's own values (the memo never goes stale)."""
    first = encode_telegram("ABC5X", ["1-0:1.8.1(000001.000*kWh)", "1-0:32.7.0(230.0*V)"])
    second = encode_telegram("ABC5X", ["1-0:1.8.1(000001.001*kWh)", "1-0:32.7.0(230.0*V)"])
    encoder = TelegramJsonEncoder()
    texts = [encoder.encode(t) for t in decoded(decode_events(first + second + first))]
    values = [json.loads(text)["objects"]["1-0:1.8.1"]["value"] for text in texts]
    assert values == [1.0, 1.001, 1.0]
    assert texts[0] == texts[2]


def test_encoder_without_memo_gives_same_text() -> None:
    """cache_size=0 encodes to exactly the same text."""
    telegram = decode_one(COMPOSED["be_t211_full"])
    assert TelegramJsonEncoder(cache_size=0).encode(telegram) == TelegramJsonEncoder().encode(
        telegram
    )
