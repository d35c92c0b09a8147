"""Home Assistant MQTT discovery: configs checked against Home Assistant's documented schema."""

import json
from datetime import datetime
from typing import Any

import pytest

from p1mqtt.discovery import (
    HaEntity,
    ValueRule,
    ha_birth_topic,
    ha_config_subscription,
    ha_devices,
    ha_discovery_messages,
    ha_entities,
    ha_node_id,
    ha_removal_messages,
    value_template,
)
from p1mqtt.errors import UsageError
from p1mqtt.health import Health
from p1mqtt.protocol import Decoder, Telegram, TelegramDecoded, encode_telegram
from p1mqtt.topics import Message, TopicMapper, TopicRules

# --- telegrams -----------------------------------------------------------------------------


def hex_text(text: str) -> str:
    """``text`` as a P1 octet string."""
    return text.encode("ascii").hex().upper()


def decode(header: str, lines: list[str]) -> Telegram:
    """Decode one telegram built from ``lines``."""
    events = Decoder().feed(encode_telegram(header, lines))
    assert len(events) == 1 and isinstance(events[0], TelegramDecoded)
    return events[0].telegram


BE_HEADER = "FLU5\\253769484_A"
BE_LINES = [
    "0-0:96.1.4(50221)",
    "1-0:94.32.1(400)",
    f"0-0:96.1.1({hex_text('1SAG3100716957')})",
    "0-0:1.0.0(250214081512W)",
    "1-0:1.8.1(002601.234*kWh)",
    "1-0:1.8.2(003437.690*kWh)",
    "1-0:2.8.1(003902.111*kWh)",
    "1-0:2.8.2(001623.307*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.4.0(01.250*kW)",
    "1-0:1.6.0(250207181500W)(04.987*kW)",
    "0-0:98.1.0(3)(1-0:1.6.0)(1-0:1.6.0)"
    "(241201000000W)(241121233000W)(04.428*kW)"
    "(250101000000W)(241227191500W)(07.211*kW)"
    "(250201000000W)(250114081500W)(05.494*kW)",
    "1-0:1.7.0(01.234*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:21.7.0(00.410*kW)",
    "1-0:32.7.0(231.4*V)",
    "1-0:52.7.0(229.8*V)",
    "1-0:72.7.0(232.0*V)",
    "1-0:31.7.0(002.15*A)",
    "0-0:96.3.10(1)",
    "0-0:17.0.0(99.999*kW)",
    "1-0:31.4.0(999.99*A)",
    f"0-0:96.13.0({hex_text('Onderbreking gepland op 20/01')})",
    "0-1:24.1.0(003)",
    f"0-1:96.1.1({hex_text('7FLO2123015189')})",
    "0-1:24.4.0(1)",
    "0-1:24.2.3(250214081005W)(04856.664*m3)",
    "0-2:24.1.0(007)",
    f"0-2:96.1.1({hex_text('8SET0000837964')})",
    "0-2:24.2.1(250214080958W)(00123.456*m3)",
]

NL_HEADER = "ISK5\\2M550T-1012"
NL_LINES = [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(190320181403W)",
    f"0-0:96.1.1({hex_text('E0043007052870318')})",
    "1-0:1.8.1(000576.239*kWh)",
    "1-0:1.8.2(000465.162*kWh)",
    "1-0:2.8.1(000000.000*kWh)",
    "1-0:2.8.2(000000.000*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.7.0(00.193*kW)",
    "1-0:2.7.0(00.000*kW)",
    "0-0:96.7.21(00009)",
    "1-0:99.97.0(2)(0-0:96.7.19)(190201235231W)(0000003231*s)(190212214204W)(0000001489*s)",
    "1-0:32.32.0(00006)",
    "0-0:96.13.0()",
    "1-0:32.7.0(236.1*V)",
    "0-1:24.1.0(003)",
    f"0-1:96.1.0({hex_text('G0032565535520117')})",
    "0-1:24.2.1(190320181003W)(00304.089*m3)",
]

# Units a meter may send that Home Assistant does not take for the catalogue's class, plus
# reactive readings, an apparent-power limiter, a billing profile and a code nobody knows.
ODD_LINES = [
    "0-0:96.1.4(50250)",
    "0-0:1.0.0(250716100010S)",
    "1-0:1.8.0(0002720.76*kWh)",
    "1-0:3.7.0(00.000*kvar)",
    "1-0:5.8.0(0000012.77*kvarh)",
    "0-0:17.0.0(14.950*kVA)",
    "1-0:96.50.68(1234.5*kW)",
    "0-0:98.1.1(1)(0-0:0.1.0)(1-0:1.8.0)(1-0:2.8.0)(250701000000S)(15)(0002631.00*kWh)(0001091.45*kWh)",
    "0-1:24.1.0(003)",
    "0-1:24.2.3(632525252525W)(00000.000)",
]


def be() -> Telegram:
    """A Belgian T211 with capacity objects, a text message, gas and water."""
    return decode(BE_HEADER, BE_LINES)


def nl() -> Telegram:
    """A Dutch DSMR 5 meter (tariff 1 = low) with gas and a power failure log."""
    return decode(NL_HEADER, NL_LINES)


def odd() -> Telegram:
    """A meter without equipment id, with odd units and a gas meter sending placeholders."""
    return decode("LG_E660_Fluvius_3N400V", ODD_LINES)


ALL = pytest.mark.parametrize("make", [be, nl, odd], ids=["be", "nl", "odd"])


def configs(telegram: Telegram, **options: Any) -> dict[str, dict[str, Any]]:
    """Discovery configs by entity key (the ``<key>`` of the config topic)."""
    options.setdefault("prefix", "p1mqtt")
    found = {}
    for message in ha_discovery_messages(telegram, **options):
        key = message.topic.split("/")[-2]
        found[key] = json.loads(message.payload)
    return found


def entities(telegram: Telegram) -> dict[str, HaEntity]:
    """Entities by key."""
    return {entity.key: entity for entity in ha_entities(telegram, prefix="p1mqtt")}


# --- Home Assistant's documented schema ----------------------------------------------------

# Configuration variables of an MQTT sensor, from the Home Assistant docs page
# "MQTT Sensor" (https://www.home-assistant.io/integrations/sensor.mqtt/).
SENSOR_OPTIONS = {
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "default_entity_id",
    "device",
    "device_class",
    "enabled_by_default",
    "encoding",
    "entity_category",
    "entity_picture",
    "expire_after",
    "force_update",
    "icon",
    "json_attributes_template",
    "json_attributes_topic",
    "last_reset_value_template",
    "name",
    "object_id",
    "options",
    "origin",
    "payload_available",
    "payload_not_available",
    "platform",
    "qos",
    "state_class",
    "state_topic",
    "suggested_display_precision",
    "unique_id",
    "unit_of_measurement",
    "value_template",
}
DEVICE_OPTIONS = {
    "configuration_url",
    "connections",
    "hw_version",
    "identifiers",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "serial_number",
    "suggested_area",
    "sw_version",
    "via_device",
}
# "origin" of the MQTT discovery docs (https://www.home-assistant.io/integrations/mqtt/).
ORIGIN_OPTIONS = {"name", "sw_version", "support_url"}

# Units Home Assistant accepts per sensor device class, from the Home Assistant docs page
# "Sensor" > "Device class" (https://www.home-assistant.io/integrations/sensor/#device-class).
# The MQTT integration rejects a discovery config whose unit is not in its class's set.
DEVICE_CLASS_UNITS: dict[str, set[str | None]] = {
    "apparent_power": {"mVA", "VA", "kVA"},
    "current": {"A", "mA"},
    "data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "KiB", "MiB"},
    "duration": {"d", "h", "min", "s", "ms"},
    "energy": {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal"},
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "gas": {"m³", "ft³", "CCF"},
    "power": {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"},
    "power_factor": {None, "%"},
    "reactive_energy": {"varh", "kvarh"},
    "reactive_power": {"mvar", "var", "kvar"},
    "voltage": {"µV", "mV", "V", "kV", "MV"},
    "water": {"m³", "L", "gal", "ft³", "CCF"},
}
# State classes Home Assistant allows per device class (same page, and the developer docs'
# "Sensor entity" page, https://developers.home-assistant.io/docs/core/entity/sensor/).
TOTALS = {"total", "total_increasing"}
DEVICE_CLASS_STATE_CLASSES: dict[str, set[str]] = {
    "apparent_power": {"measurement"},
    "current": {"measurement"},
    "data_size": {"measurement", *TOTALS},
    "duration": {"measurement", *TOTALS},
    "energy": TOTALS,
    "enum": set(),
    "frequency": {"measurement"},
    "gas": TOTALS,
    "power": {"measurement"},
    "power_factor": {"measurement"},
    "reactive_energy": TOTALS,
    "reactive_power": {"measurement"},
    "timestamp": set(),
    "voltage": {"measurement"},
    "water": TOTALS,
}
NON_NUMERIC_CLASSES = {"date", "enum", "timestamp"}
# What the Energy dashboard offers in its pickers (https://www.home-assistant.io/docs/energy/):
# grid consumption and return, gas and water, by device class: (units, state classes).
ENERGY_DASHBOARD: dict[str, tuple[set[str], set[str]]] = {
    "energy": ({"Wh", "kWh", "MWh", "MJ", "GJ"}, TOTALS),
    "gas": ({"m³", "ft³", "CCF"}, TOTALS),
    "water": ({"m³", "L", "gal", "ft³", "CCF"}, TOTALS),
}


# --- schema --------------------------------------------------------------------------------


@ALL
def test_config_topics_retained_qos1(make: Any) -> None:
    """Every config goes to <discovery_prefix>/sensor/<node_id>/<key>/config, retained, QoS 1."""
    telegram = make()
    messages = ha_discovery_messages(telegram, prefix="p1mqtt")
    node = ha_node_id(telegram)
    assert messages
    for message in messages:
        parts = message.topic.split("/")
        assert parts[:3] == ["homeassistant", "sensor", node] and parts[4] == "config"
        assert message.retain and message.qos == 1


@ALL
def test_configs_use_only_documented_options(make: Any) -> None:
    """Config, device and origin keys are all documented MQTT sensor options."""
    for config in configs(make()).values():
        assert set(config) <= SENSOR_OPTIONS
        assert {"name", "unique_id", "state_topic", "device", "origin"} <= set(config)
        assert set(config["device"]) <= DEVICE_OPTIONS
        assert set(config["origin"]) <= ORIGIN_OPTIONS and config["origin"]["name"] == "p1mqtt"
        assert "object_id" not in config  # deprecated in favour of default_entity_id


@ALL
def test_units_are_accepted_for_their_device_class(make: Any) -> None:
    """Each device class comes with a unit Home Assistant accepts for it."""
    for key, config in configs(make()).items():
        device_class = config.get("device_class")
        if device_class is None or device_class in NON_NUMERIC_CLASSES:
            continue
        assert config.get("unit_of_measurement") in DEVICE_CLASS_UNITS[device_class], key


@ALL
def test_state_classes_are_accepted_for_their_device_class(make: Any) -> None:
    """Each state class is one Home Assistant allows for the entity's device class."""
    for key, config in configs(make()).items():
        device_class, state_class = config.get("device_class"), config.get("state_class")
        if device_class is not None and state_class is not None:
            assert state_class in DEVICE_CLASS_STATE_CLASSES[device_class], key
        if state_class is not None:
            assert state_class in {"measurement", *TOTALS}


@ALL
def test_non_numeric_sensors_have_no_unit_or_state_class(make: Any) -> None:
    """Timestamp and enum sensors carry no unit or state class; only enums carry options."""
    for key, config in configs(make()).items():
        if config.get("device_class") in NON_NUMERIC_CLASSES:
            assert "unit_of_measurement" not in config and "state_class" not in config, key
        if "options" in config:
            assert config["device_class"] == "enum" and config["options"], key
        if config.get("device_class") == "enum":
            assert len(set(config["options"])) == len(config["options"]), key


@ALL
def test_entity_category_is_diagnostic_only(make: Any) -> None:
    """Sensors may not be configuration entities: the only category used is diagnostic."""
    for config in configs(make()).values():
        assert config.get("entity_category", "diagnostic") == "diagnostic"


def test_energy_dashboard_sensors() -> None:
    """Tariff registers, gas and water are exactly what the Energy dashboard accepts."""
    found = configs(be())
    expected = {
        "energy_import_tariff_1": ("energy", "total_increasing", "kWh"),
        "energy_import_tariff_2": ("energy", "total_increasing", "kWh"),
        "energy_export_tariff_1": ("energy", "total_increasing", "kWh"),
        "energy_export_tariff_2": ("energy", "total_increasing", "kWh"),
        "gas_volume": ("gas", "total_increasing", "m³"),
        "water_volume": ("water", "total_increasing", "m³"),
        "power_import": ("power", "measurement", "kW"),
        "voltage_l1": ("voltage", "measurement", "V"),
        "current_l1": ("current", "measurement", "A"),
        "demand_import_quarter": ("power", "measurement", "kW"),
        "demand_import_month_peak": ("power", "measurement", "kW"),
    }
    for key, (device_class, state_class, unit) in expected.items():
        config = found[key]
        assert (
            config["device_class"],
            config["state_class"],
            config["unit_of_measurement"],
        ) == (device_class, state_class, unit), key
        if device_class in ENERGY_DASHBOARD:
            units, state_classes = ENERGY_DASHBOARD[device_class]
            assert unit in units and state_class in state_classes
        assert "entity_category" not in config and "value_template" not in config


def test_tariff_indicator_and_enumerations() -> None:
    """The tariff indicator is a plain sensor; breaker and valve states are enum sensors."""
    found = configs(be())
    assert "device_class" not in found["tariff"] and "unit_of_measurement" not in found["tariff"]
    assert found["breaker_state"]["device_class"] == "enum"
    assert found["breaker_state"]["options"] == [
        "disconnected",
        "connected",
        "ready_for_reconnection",
    ]
    assert found["gas_valve_state"]["options"] == ["closed", "open", "ready_to_open"]


def test_meter_units_are_written_as_home_assistant_spells_them() -> None:
    """m3 becomes m³; kvar and kvarh keep their reactive classes; the M-Bus medium supplies a
    missing unit."""
    found = configs(odd())
    assert found["reactive_power_import"]["unit_of_measurement"] == "kvar"
    assert found["reactive_power_import"]["device_class"] == "reactive_power"
    assert found["reactive_energy_q1"]["device_class"] == "reactive_energy"
    assert found["gas_volume"]["unit_of_measurement"] == "m³"
    assert found["gas_volume"]["device_class"] == "gas"


def test_unit_outside_the_device_class_drops_the_class() -> None:
    """A kVA limiter keeps its unit but gets no device class (kVA is not accepted everywhere)."""
    limiter = configs(odd())["limiter_threshold"]
    assert limiter["unit_of_measurement"] == "kVA" and "device_class" not in limiter
    assert configs(be())["limiter_threshold"]["device_class"] == "power"


def test_unknown_codes_are_diagnostic_sensors_with_their_unit() -> None:
    """A code the catalogue does not know still gets an entity, named by its code."""
    unknown = configs(odd())["obis_1_0_96_50_68"]
    assert unknown["name"] == "OBIS 1-0:96.50.68"
    assert unknown["unit_of_measurement"] == "kW" and "device_class" not in unknown
    assert unknown["entity_category"] == "diagnostic"


def test_precision_follows_the_meter_digits() -> None:
    """suggested_display_precision is the number of decimals the meter sends."""
    found = configs(be())
    assert found["energy_import_tariff_1"]["suggested_display_precision"] == 3
    assert found["voltage_l1"]["suggested_display_precision"] == 1
    assert found["current_l1"]["suggested_display_precision"] == 2


def test_placeholder_reading_sets_no_precision() -> None:
    """A placeholder reading without digits or unit (00000000) leaves precision open."""
    telegram = decode(
        BE_HEADER,
        ["0-0:96.1.4(50217)", "0-2:24.1.0(007)", "0-2:24.2.1(700101010000W)(00000000)"],
    )
    water = configs(telegram)["water_volume"]
    assert "suggested_display_precision" not in water
    assert water["unit_of_measurement"] == "m³" and water["device_class"] == "water"


# --- naming, identity, devices -------------------------------------------------------------


def test_belgian_tariff_labels_say_day_and_night() -> None:
    """In Belgium tariff 1 is day and tariff 2 night."""
    found = configs(be())
    assert found["energy_import_tariff_1"]["name"] == "Energy imported, tariff 1 (day)"
    assert found["energy_export_tariff_2"]["name"] == "Energy exported, tariff 2 (night)"


def test_dutch_tariff_labels_are_reversed() -> None:
    """In the Netherlands tariff 1 is low and tariff 2 normal; the keys stay the same."""
    found = configs(nl())
    assert found["energy_import_tariff_1"]["name"] == "Energy imported, tariff 1 (low)"
    assert found["energy_import_tariff_2"]["name"] == "Energy imported, tariff 2 (normal)"


@ALL
def test_names_leave_the_device_name_out(make: Any) -> None:
    """Entity names never repeat their device's name (Home Assistant adds it)."""
    for key, config in configs(make()).items():
        device_name = config["device"]["name"]
        assert config["name"] and not config["name"].lower().startswith(device_name.lower()), key


@ALL
def test_unique_ids_are_unique_and_stable(make: Any) -> None:
    """Unique ids differ per entity and do not change with the values of the next telegram."""
    first = configs(make())
    ids = [config["unique_id"] for config in first.values()]
    assert len(ids) == len(set(ids))
    assert all(uid.startswith("p1mqtt_") for uid in ids)
    header, lines = {be: (BE_HEADER, BE_LINES), nl: (NL_HEADER, NL_LINES)}.get(
        make, ("LG_E660_Fluvius_3N400V", ODD_LINES)
    )
    later = [line.replace("231.4*V", "229.9*V").replace("00.193*kW", "01.500*kW") for line in lines]
    again = configs(decode(header, later))
    assert {k: c["unique_id"] for k, c in again.items()} == {
        k: c["unique_id"] for k, c in first.items()
    }


def test_unique_ids_come_from_the_equipment_id() -> None:
    """The meter's equipment id names its device and prefixes unique ids."""
    found = configs(be())
    assert found["power_import"]["unique_id"] == "p1mqtt_1sag3100716957_power_import"
    assert found["gas_volume"]["unique_id"] == "p1mqtt_1sag3100716957_gas_volume"
    assert found["power_import"]["device"]["identifiers"] == ["p1mqtt_1sag3100716957"]
    assert ha_node_id(be()) == "p1mqtt_1sag3100716957"


def test_without_equipment_id_the_header_identifies_the_meter() -> None:
    """A meter without an id object is identified by its header."""
    telegram = decode(BE_HEADER, ["0-0:96.1.4(50217)", "1-0:1.8.1(000001.000*kWh)"])
    config = configs(telegram)["energy_import_tariff_1"]
    assert config["unique_id"] == "p1mqtt_flu5_253769484_a_energy_import_tariff_1"


def test_default_entity_ids_are_readable() -> None:
    """Entity ids are sensor.<device name>_<key>."""
    found = configs(be())
    assert found["energy_import_tariff_1"]["default_entity_id"] == (
        "sensor.p1_meter_energy_import_tariff_1"
    )
    assert found["gas_volume"]["default_entity_id"] == "sensor.p1_meter_gas_volume"
    renamed = configs(be(), device_name="Elektriciteit")
    assert renamed["power_import"]["default_entity_id"] == "sensor.elektriciteit_power_import"


def test_meter_device_describes_the_meter() -> None:
    """The meter's device has manufacturer and model from the header, P1 version as firmware."""
    device = configs(be())["power_import"]["device"]
    assert device == {
        "identifiers": ["p1mqtt_1sag3100716957"],
        "name": "P1 meter",
        "manufacturer": "Fluvius",
        "model": "253769484_A",
        "sw_version": "e-MUCS 50221",
        "serial_number": "1SAG3100716957",
    }
    nl_device = configs(nl())["power_import"]["device"]
    assert nl_device["manufacturer"] == "Iskraemeco" and nl_device["sw_version"] == "DSMR 5.0"


def test_mbus_meters_are_devices_behind_the_meter() -> None:
    """Gas and water are their own devices, linked to the meter with via_device."""
    found = configs(be())
    gas, water = found["gas_volume"]["device"], found["water_volume"]["device"]
    assert gas["name"] == "Gas meter" and water["name"] == "Water meter"
    assert gas["via_device"] == water["via_device"] == "p1mqtt_1sag3100716957"
    assert gas["identifiers"] != water["identifiers"]
    assert gas["serial_number"] == "7FLO2123015189"
    assert found["gas_valve_state"]["device"] == gas
    assert found["gas_volume"]["name"] == "Volume"
    assert [d.name for d in ha_devices(be())] == ["P1 meter", "Gas meter", "Water meter"]


@ALL
def test_availability_follows_the_status_topic(make: Any) -> None:
    """Every entity is available while <prefix>/status says online."""
    for config in configs(make(), prefix="home/meter").values():
        assert config["availability_topic"] == "home/meter/status"
        assert config["payload_available"] == "online"
        assert config["payload_not_available"] == "offline"


def test_timestamps_are_timestamp_sensors() -> None:
    """The meter clock and capture times are timestamp sensors; the clock starts disabled."""
    found = configs(be())
    assert found["timestamp"]["device_class"] == "timestamp"
    assert found["timestamp"]["enabled_by_default"] is False
    assert found["gas_volume_timestamp"]["state_topic"] == "p1mqtt/gas_volume/timestamp"
    assert found["gas_volume_timestamp"]["device_class"] == "timestamp"
    peak_time = found["demand_import_month_peak_timestamp"]
    assert peak_time["name"] == "Peak import demand, this month, time"


def test_identification_objects_are_diagnostic() -> None:
    """Ids, versions and thresholds are diagnostic; text messages and readings are not."""
    found = configs(be())
    for key in ("equipment_id", "emucs_version", "limiter_threshold", "gas_equipment_id"):
        assert found[key]["entity_category"] == "diagnostic", key
    for key in ("text_message", "power_import", "tariff", "gas_volume"):
        assert "entity_category" not in found[key], key


def test_peak_history_shows_the_latest_month_with_history_attributes() -> None:
    """The 13-month peak history's state is its latest month; the entries are attributes."""
    config = configs(be())["demand_import_peak_history"]
    assert config["device_class"] == "power" and config["unit_of_measurement"] == "kW"
    assert "state_class" not in config
    assert config["json_attributes_topic"] == config["state_topic"]
    assert "value_json" in config["json_attributes_template"]


def test_health_figures_read_the_health_topic() -> None:
    """Health figures are diagnostic sensors on <prefix>/health; the state is an enum."""
    found = configs(be())
    state = found["health_state"]
    assert state["state_topic"] == "p1mqtt/health"
    assert state["options"] == ["waiting", "ok", "stale"]
    assert state["value_template"] == "{{ value_json.state }}"
    decoded = found["health_telegrams_decoded"]
    assert decoded["value_template"] == "{{ value_json.telegrams_decoded }}"
    assert decoded["state_class"] == "total_increasing"
    assert decoded["entity_category"] == "diagnostic"
    assert "health_state" not in configs(be(), health=False)


def test_include_filters_entities() -> None:
    """include(obis, key) decides which readings get entities."""
    keep = {"energy_import_tariff_1", "gas_volume"}
    found = configs(be(), include=lambda obis, key: key in keep or obis == "1-0:1.7.0")
    readings = {key for key in found if not key.startswith("health_")}
    assert readings == {
        "energy_import_tariff_1",
        "power_import",
        "gas_volume",
        "gas_volume_timestamp",
    }


def test_discovery_prefix_and_node_id_are_configurable() -> None:
    """The discovery prefix and node id can be chosen; invalid ones are refused."""
    messages = ha_discovery_messages(be(), prefix="p1mqtt", discovery_prefix="ha", node_id="meter")
    assert messages[0].topic.startswith("ha/sensor/meter/")
    with pytest.raises(UsageError):
        ha_discovery_messages(be(), prefix="p1mqtt", node_id="bad/id")
    with pytest.raises(UsageError):
        ha_discovery_messages(be(), prefix="p1mqtt", discovery_prefix="ha/#")


def test_removal_and_subscription_helpers() -> None:
    """Removal is an empty retained config; the filter matches every config of the meter."""
    topics = [m.topic for m in ha_discovery_messages(be(), prefix="p1mqtt")]
    removal = ha_removal_messages(topics)
    assert [m.topic for m in removal] == topics
    assert all(m == Message(m.topic, "", 1, True) for m in removal)
    node = ha_node_id(be())
    assert ha_config_subscription("homeassistant", node) == f"homeassistant/sensor/{node}/+/config"
    assert ha_birth_topic() == "homeassistant/status"


def test_payloads_are_json_with_real_unicode() -> None:
    """Configs are compact JSON; m³ is sent as UTF-8, not escaped."""
    message = next(
        m for m in ha_discovery_messages(be(), prefix="p1mqtt") if "gas_volume/" in m.topic
    )
    assert "m³" in message.payload and "\\u00b3" not in message.payload
    assert message.payload.startswith('{"name":"Volume",')


def test_discovery_is_deterministic() -> None:
    """The same telegram gives the same messages (so re-sending changes nothing)."""
    assert ha_discovery_messages(be(), prefix="p1mqtt") == ha_discovery_messages(
        be(), prefix="p1mqtt"
    )


# --- what the entities will show ------------------------------------------------------------


def expected_state(entity: HaEntity, payload: str) -> str | None:
    """What the entity's value_template makes of ``payload`` (``None``: unknown)."""
    rule = entity.rule
    if rule is ValueRule.PLAIN:
        return payload
    if rule is ValueRule.TEXT:
        return payload[:255]
    if rule is ValueRule.TIMESTAMP:
        return payload or None
    if rule is ValueRule.ENUM:
        return entity.labels.get(payload)
    data = json.loads(payload)
    if rule in {ValueRule.JSON_FIELD, ValueRule.JSON_TEXT}:
        value = data[entity.json_field]
        return None if value is None else str(value)
    if rule is ValueRule.LATEST_ENTRY:
        done = sorted((e for e in data if e["period"]), key=lambda e: e["period"])
        return str(done[-1]["value"]) if done else None
    return str(len(data))


@ALL
def test_state_topics_carry_the_values_the_entities_claim(make: Any) -> None:
    """Each entity reads a topic the mapper publishes, and its state fits its class."""
    telegram = make()
    published = {
        m.topic: m.payload
        for m in TopicMapper(TopicRules(prefix="p1mqtt")).messages(telegram, None, 0.0)
    }
    health = Health(started=0.0)
    health.record(TelegramDecoded(telegram, 0), 1.0)
    published["p1mqtt/health"] = health.to_json(2.0)
    for entity in ha_entities(telegram, prefix="p1mqtt"):
        assert entity.state_topic in published, entity.key
        state = expected_state(entity, published[entity.state_topic])
        if state is None:
            continue
        if entity.numeric:
            float(state)
        if entity.device_class == "timestamp":
            assert datetime.fromisoformat(state).tzinfo is not None, entity.key
        if entity.device_class == "enum":
            assert state in entity.options, entity.key
        if not entity.numeric:
            assert len(state) <= 255


def test_value_templates() -> None:
    """Templates map placeholders and unknown codes to 'None' (unknown) and cut long text."""
    found = entities(be())
    assert value_template(found["power_import"]) is None
    assert value_template(found["text_message"]) == "{{ value[:255] }}"
    assert value_template(found["gas_volume_timestamp"]) == "{{ value if value else 'None' }}"
    assert value_template(found["breaker_state"]) == (
        '{{ {"0": "disconnected", "1": "connected", "2": "ready_for_reconnection"}'
        ".get(value, 'None') }}"
    )
    assert value_template(found["health_port"]) == "{{ (value_json.port or 'None')[:255] }}"
    assert "sort(attribute='period')" in (value_template(found["demand_import_peak_history"]) or "")


def test_profiles_without_months_count_their_entries() -> None:
    """The power failure log shows how many entries it has, with the entries as attributes."""
    log = entities(nl())["power_failure_log"]
    assert log.rule is ValueRule.ENTRY_COUNT and log.diagnostic and log.json_attributes
    assert value_template(log) == "{{ value_json | length }}"


def test_every_reading_has_an_entity() -> None:
    """Every reading of the telegram has exactly one entity (plus one per capture time)."""
    telegram = be()
    keys = {entity.key for entity in ha_entities(telegram, prefix="p1mqtt", health=False)}
    readings = set(telegram.keys.values())
    captured = {
        f"{key}_timestamp"
        for key, obj in telegram.by_key()
        if obj.has_timestamp and obj.timestamp is not obj.value
    }
    assert keys == readings | captured
