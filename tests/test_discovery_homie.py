"""Homie 4.0 output: the device tree, its attributes, datatypes, units and values."""

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from p1mqtt.discovery import (
    HOMIE_VERSION,
    HomieDatatype,
    HomieState,
    homie_messages,
    homie_nodes,
    homie_state_message,
    homie_values,
    homie_will,
)
from p1mqtt.errors import UsageError
from p1mqtt.protocol import Decoder, Telegram, TelegramDecoded, encode_telegram
from p1mqtt.topics import Message, TopicMapper, TopicRules


def hex_text(text: str) -> str:
    """``text`` as a P1 octet string."""
    return text.encode("ascii").hex().upper()


def decode(header: str, lines: list[str]) -> Telegram:
    """Decode one telegram built from ``lines``."""
    events = Decoder().feed(encode_telegram(header, lines))
    assert len(events) == 1 and isinstance(events[0], TelegramDecoded)
    return events[0].telegram


def be() -> Telegram:
    """A Belgian T211 with capacity objects, gas (with valve) and water."""
    return decode(
        "FLU5\\253769484_A",
        [
            "0-0:96.1.4(50221)",
            f"0-0:96.1.1({hex_text('1SAG3100716957')})",
            "0-0:1.0.0(250214081512W)",
            "1-0:1.8.1(002601.234*kWh)",
            "1-0:1.8.2(003437.690*kWh)",
            "1-0:2.8.1(003902.111*kWh)",
            "1-0:2.8.2(001623.307*kWh)",
            "0-0:96.14.0(0002)",
            "1-0:1.4.0(01.250*kW)",
            "1-0:1.6.0(250207181500W)(04.987*kW)",
            "0-0:98.1.0(1)(1-0:1.6.0)(1-0:1.6.0)(250201000000W)(250114081500W)(05.494*kW)",
            "1-0:1.7.0(01.234*kW)",
            "1-0:32.7.0(231.4*V)",
            "1-0:31.7.0(002.15*A)",
            "0-0:96.3.10(1)",
            "0-0:96.13.0()",
            "0-1:24.1.0(003)",
            f"0-1:96.1.1({hex_text('7FLO2123015189')})",
            "0-1:24.4.0(1)",
            "0-1:24.2.3(250214081005W)(04856.664*m3)",
            "0-2:24.1.0(007)",
            "0-2:24.2.1(250214080958W)(00123.456*m3)",
            "0-3:24.1.0(003)",
            "0-3:24.2.3(632525252525W)(00000.000)",
        ],
    )


def nl() -> Telegram:
    """A Dutch DSMR 5 meter with gas."""
    return decode(
        "ISK5\\2M550T-1012",
        [
            "1-3:0.2.8(50)",
            "0-0:1.0.0(190320181403W)",
            "1-0:1.8.1(000576.239*kWh)",
            "1-0:1.8.2(000465.162*kWh)",
            "0-0:96.14.0(0002)",
            "0-0:96.7.21(00009)",
            "0-1:24.1.0(003)",
            "0-1:24.2.1(190320181003W)(00304.089*m3)",
        ],
    )


ALL = pytest.mark.parametrize("make", [be, nl], ids=["be", "nl"])
ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
DATATYPES = {"integer", "float", "boolean", "string", "enum", "color"}
DEVICE = "homie/p1meter"


def tree(telegram: Telegram, **options: Any) -> dict[str, str]:
    """The announcement as topic -> payload (later messages win, as on a broker)."""
    return {m.topic: m.payload for m in homie_messages(telegram, **options)}


@ALL
def test_announcement_starts_with_init_and_ends_with_ready(make: Any) -> None:
    """$state is init first and ready last; everything is retained with QoS 1."""
    messages = homie_messages(make())
    assert messages[0] == Message(f"{DEVICE}/$state", "init", 1, True)
    assert messages[-1] == Message(f"{DEVICE}/$state", "ready", 1, True)
    assert all(m.retain and m.qos == 1 for m in messages)


@ALL
def test_device_attributes(make: Any) -> None:
    """The device has $homie 4.0.0, $name, $nodes and $extensions."""
    found = tree(make(), name="Meterkast")
    assert found[f"{DEVICE}/$homie"] == HOMIE_VERSION == "4.0.0"
    assert found[f"{DEVICE}/$name"] == "Meterkast"
    assert found[f"{DEVICE}/$extensions"] == ""
    assert tree(make())[f"{DEVICE}/$name"] == "P1 meter"


def test_one_node_per_meter() -> None:
    """The electricity meter and each M-Bus meter are nodes, named by medium."""
    found = tree(be())
    assert found[f"{DEVICE}/$nodes"] == "electricity,gas,water,gas-2"
    assert found[f"{DEVICE}/gas/$name"] == "Gas meter"
    assert found[f"{DEVICE}/gas-2/$name"] == "Gas meter 2"
    assert found[f"{DEVICE}/water/$type"] == "Water"
    assert found[f"{DEVICE}/electricity/$type"] == "Fluvius 253769484_A"


@ALL
def test_every_node_and_property_has_its_required_attributes(make: Any) -> None:
    """Nodes have $name, $type, $properties; properties have $name, $datatype and flags."""
    found = tree(make())
    for node in found[f"{DEVICE}/$nodes"].split(","):
        for attribute in ("$name", "$type", "$properties"):
            assert f"{DEVICE}/{node}/{attribute}" in found
        for prop in found[f"{DEVICE}/{node}/$properties"].split(","):
            base = f"{DEVICE}/{node}/{prop}"
            assert found[f"{base}/$name"]
            assert found[f"{base}/$datatype"] in DATATYPES
            assert found[f"{base}/$settable"] == "false"
            assert found[f"{base}/$retained"] == "true"
            if found[f"{base}/$datatype"] == "enum":
                assert found[f"{base}/$format"]


@ALL
def test_topic_ids_follow_the_homie_id_format(make: Any) -> None:
    """Every id level is lower-case letters, digits and inner hyphens; attributes start with $."""
    for message in homie_messages(make()):
        levels = message.topic.split("/")[1:]
        for level in levels:
            assert level.startswith("$") or ID.match(level), message.topic


@ALL
def test_listed_properties_are_exactly_the_published_ones(make: Any) -> None:
    """$nodes and $properties list exactly the nodes and properties that are described."""
    found = tree(make())
    described = {tuple(topic.split("/")[2:4]) for topic in found if topic.endswith("/$datatype")}
    listed = {
        (node, prop)
        for node in found[f"{DEVICE}/$nodes"].split(",")
        for prop in found[f"{DEVICE}/{node}/$properties"].split(",")
    }
    assert described == listed


def test_datatypes_and_units() -> None:
    """Registers are floats with units, codes integers, states enums, ids and times strings."""
    found = tree(be())
    attrs = {
        "electricity/energy-import-tariff-1": ("float", "kWh"),
        "electricity/power-import": ("float", "kW"),
        "electricity/voltage-l1": ("float", "V"),
        "electricity/current-l1": ("float", "A"),
        "electricity/tariff": ("integer", None),
        "electricity/breaker-state": ("enum", None),
        "electricity/equipment-id": ("string", None),
        "electricity/timestamp": ("string", None),
        "electricity/demand-import-month-peak-timestamp": ("string", None),
        "electricity/demand-import-peak-history": ("string", None),
        "gas/volume": ("float", "m³"),
        "gas/valve-state": ("enum", None),
        "water/volume": ("float", "m³"),
        "gas-2/volume": ("float", "m³"),
    }
    for path, (datatype, unit) in attrs.items():
        assert found[f"{DEVICE}/{path}/$datatype"] == datatype, path
        assert found.get(f"{DEVICE}/{path}/$unit") == unit, path
    assert found[f"{DEVICE}/electricity/breaker-state/$format"] == (
        "disconnected,connected,ready_for_reconnection"
    )


def test_names_follow_the_catalogue_and_country() -> None:
    """Property names say day/night in Belgium and low/normal in the Netherlands."""
    assert tree(be())[f"{DEVICE}/electricity/energy-import-tariff-1/$name"] == (
        "Energy imported, tariff 1 (day)"
    )
    assert tree(nl())[f"{DEVICE}/electricity/energy-import-tariff-1/$name"] == (
        "Energy imported, tariff 1 (low)"
    )
    assert tree(be())[f"{DEVICE}/gas/volume/$name"] == "Volume"


@ALL
def test_values_fit_their_datatype(make: Any) -> None:
    """Floats and integers parse, enums are in their $format, times are ISO 8601."""
    telegram = make()
    found = tree(telegram)
    for message in homie_values(telegram):
        base = message.topic
        datatype = found[f"{base}/$datatype"]
        if datatype == "float":
            Decimal(message.payload)
            assert "," not in message.payload
        elif datatype == "integer":
            int(message.payload)
        elif datatype == "enum":
            assert message.payload in found[f"{base}/$format"].split(",")
        if base.endswith("timestamp"):
            assert datetime.fromisoformat(message.payload).tzinfo is not None


def test_values_are_the_plain_topic_values() -> None:
    """Numbers and texts carry the same digits as the plain topics."""
    telegram = be()
    plain = {m.topic: m.payload for m in TopicMapper(TopicRules()).messages(telegram, None, 0.0)}
    values = {m.topic: m.payload for m in homie_values(telegram)}
    assert values[f"{DEVICE}/electricity/energy-import-tariff-1"] == "2601.234"
    assert (
        values[f"{DEVICE}/electricity/energy-import-tariff-1"]
        == (plain["p1mqtt/energy_import_tariff_1"])
    )
    assert values[f"{DEVICE}/gas/volume"] == plain["p1mqtt/gas_volume"] == "4856.664"
    assert values[f"{DEVICE}/gas/volume-timestamp"] == plain["p1mqtt/gas_volume/timestamp"]
    assert values[f"{DEVICE}/electricity/tariff"] == "2"
    assert values[f"{DEVICE}/electricity/breaker-state"] == "connected"
    assert values[f"{DEVICE}/gas/valve-state"] == "open"
    assert json.loads(values[f"{DEVICE}/electricity/demand-import-peak-history"])[0]["value"] == (
        5.494
    )


def test_placeholder_capture_times_are_not_published() -> None:
    """A placeholder capture time has no value, so nothing overwrites the retained one."""
    values = {m.topic: m.payload for m in homie_values(be())}
    assert f"{DEVICE}/gas-2/volume-timestamp" not in values
    assert values[f"{DEVICE}/gas-2/volume"] == "0.000"


def test_announcement_contains_the_values_before_ready() -> None:
    """The values of the announcing telegram come before $state ready."""
    telegram = be()
    messages = homie_messages(telegram)
    values = homie_values(telegram)
    assert messages[-1 - len(values) : -1] == values


def test_state_messages_and_will() -> None:
    """$state messages are retained; the will says lost."""
    assert homie_state_message("alert") == Message(f"{DEVICE}/$state", "alert", 1, True)
    assert homie_state_message(HomieState.DISCONNECTED, base_topic="x", device_id="m") == Message(
        "x/m/$state", "disconnected", 1, True
    )
    assert homie_will() == Message(f"{DEVICE}/$state", "lost", 1, True)
    with pytest.raises(ValueError, match="'asleep'"):
        homie_state_message("asleep")


def test_base_topic_and_device_id_are_configurable() -> None:
    """The tree moves with base topic and device id; invalid ids are refused."""
    messages = homie_messages(nl(), base_topic="house/homie", device_id="meter-2")
    assert all(m.topic.startswith("house/homie/meter-2/") for m in messages)
    for bad in ("P1meter", "p1_meter", "-p1", "p1-", ""):
        with pytest.raises(UsageError):
            homie_messages(nl(), device_id=bad)
    with pytest.raises(UsageError):
        homie_values(nl(), base_topic="homie/#")


def test_include_filters_properties_and_empty_nodes() -> None:
    """include(obis, key) removes properties, and nodes left without any."""
    telegram = be()
    nodes = homie_nodes(telegram, include=lambda obis, key: key.startswith("energy_"))
    assert [node.id for node in nodes] == ["electricity"]
    assert [prop.id for prop in nodes[0].properties] == [
        "energy-import-tariff-1",
        "energy-import-tariff-2",
        "energy-export-tariff-1",
        "energy-export-tariff-2",
    ]
    assert all(prop.datatype is HomieDatatype.FLOAT for prop in nodes[0].properties)
    found = tree(telegram, include=lambda obis, key: key == "gas_volume")
    assert found[f"{DEVICE}/$nodes"] == "gas"
