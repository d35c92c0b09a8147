"""The Homie 4.0 convention: the meter as a self-describing device tree (openHAB discovers it).

Pure builders, no I/O. The tree under ``<base_topic>/<device_id>`` (default ``homie/p1meter``):

* device attributes ``$homie`` (``4.0.0``), ``$name``, ``$state``, ``$nodes``, ``$extensions``;
* one **node** per meter: ``electricity`` for the meter itself, and one per M-Bus meter named
  after its medium (``gas``, ``water``, ``gas-2``), each with ``$name``, ``$type`` and
  ``$properties``;
* one **property** per reading (``electricity/energy-import-tariff-1``), with ``$name``,
  ``$datatype``, ``$unit``, ``$format`` where it applies, ``$settable`` ``false`` and
  ``$retained`` ``true``; readings with a capture time get a ``<property>-timestamp``
  property beside them.

Everything is retained and QoS 1. Homie 4.0 ids allow only ``a-z``, ``0-9`` and ``-``, so the
readings' keys are written with hyphens. Homie 4.0.0 has no date type: times are ``string``
properties holding ISO 8601 text; profiles (the peak history) are ``string`` holding the same
JSON list as the plain topic.

Lifecycle: :func:`homie_messages` is the whole announcement, ``$state`` ``init`` first and
``ready`` last; :func:`homie_values` follows every telegram; :func:`homie_state_message` sends
``alert`` while the meter is silent, ``ready`` when it speaks again and ``disconnected`` before
a clean disconnect. Homie requires the connection's Last Will to set ``$state`` to ``lost``
(:func:`homie_will`), while p1mqtt's own connection already has ``<prefix>/status`` as its will
and MQTT allows one will per connection: the service is expected to publish the Homie tree on
a second connection whose will is :func:`homie_will`.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from p1mqtt.discovery._meter import (
    ENUM_LABELS,
    is_numeric,
    mbus_device_name,
    mbus_device_of,
    meter_identity,
    reading_label,
    reading_unit,
)
from p1mqtt.errors import UsageError
from p1mqtt.protocol import CosemObject, MbusDevice, Telegram, ValueKind
from p1mqtt.topics import Message, plain_payload

__all__ = [
    "HOMIE_VERSION",
    "HomieDatatype",
    "HomieNode",
    "HomieProperty",
    "HomieState",
    "homie_messages",
    "homie_nodes",
    "homie_state_message",
    "homie_values",
    "homie_will",
]

HOMIE_VERSION = "4.0.0"
MAIN_NODE = "electricity"
DEFAULT_NAME = "P1 meter"

Include = Callable[[str, str], bool]
"""``include(obis, key)``: whether a reading gets a property (the user's filters)."""

_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


class HomieState(StrEnum):
    """The device's ``$state`` values of Homie 4.0."""

    INIT = "init"
    READY = "ready"
    DISCONNECTED = "disconnected"
    SLEEPING = "sleeping"
    LOST = "lost"
    ALERT = "alert"


class HomieDatatype(StrEnum):
    """Property ``$datatype`` values of Homie 4.0.0."""

    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    STRING = "string"
    ENUM = "enum"
    COLOR = "color"


@dataclass(frozen=True, slots=True)
class HomieProperty:
    """One property of a node: a reading, or a reading's capture time."""

    id: str
    name: str
    datatype: HomieDatatype
    obis: str
    key: str
    """The reading's key in the telegram (``gas_volume``)."""
    unit: str | None = None
    format: str | None = None
    capture_time: bool = False
    """The value is the reading's capture time rather than the reading."""


@dataclass(frozen=True, slots=True)
class HomieNode:
    """One node: the electricity meter or an M-Bus meter."""

    id: str
    name: str
    type: str
    properties: tuple[HomieProperty, ...]


def homie_nodes(telegram: Telegram, *, include: Include | None = None) -> list[HomieNode]:
    """The nodes and properties of ``telegram``'s readings (those ``include`` keeps)."""
    meter = meter_identity(telegram)
    grouped: dict[int, list[HomieProperty]] = {0: []}
    for device in telegram.mbus:
        grouped[device.channel] = []
    for key, obj in telegram.by_key():
        if include is not None and not include(obj.obis, key):
            continue
        mbus = mbus_device_of(telegram, obj)
        grouped.setdefault(obj.channel, []).extend(_properties(key, obj, mbus, telegram))
    main_type = " ".join(part for part in (meter.manufacturer, meter.model) if part)
    nodes = [HomieNode(MAIN_NODE, "Electricity meter", main_type or DEFAULT_NAME, ())]
    for device in telegram.mbus:
        medium = device.medium
        nodes.append(
            HomieNode(
                _homie_id(device.name),
                mbus_device_name(device),
                medium.description if medium else "M-Bus device",
                (),
            )
        )
    channels = [0, *(device.channel for device in telegram.mbus)]
    return [
        HomieNode(node.id, node.name, node.type, tuple(grouped[channel]))
        for node, channel in zip(nodes, channels, strict=True)
        if grouped[channel]
    ]


def _properties(
    key: str, obj: CosemObject, device: MbusDevice | None, telegram: Telegram
) -> list[HomieProperty]:
    own_key = key.removeprefix(f"{device.name}_") if device is not None else key
    pid = _homie_id(own_key)
    name = reading_label(obj, device, telegram.country)
    datatype, unit, value_format = _datatype(obj, device)
    found = [HomieProperty(pid, name, datatype, obj.obis, key, unit, value_format)]
    if obj.has_timestamp and obj.timestamp is not obj.value:
        found.append(
            HomieProperty(
                f"{pid}-timestamp",
                f"{name}, time",
                HomieDatatype.STRING,
                obj.obis,
                key,
                capture_time=True,
            )
        )
    return found


def _datatype(
    obj: CosemObject, device: MbusDevice | None
) -> tuple[HomieDatatype, str | None, str | None]:
    definition = obj.definition
    if obj.entries is not None or isinstance(obj.value, datetime):
        return HomieDatatype.STRING, None, None
    if definition is not None and definition.kind is ValueKind.TIMESTAMP:
        return HomieDatatype.STRING, None, None
    if definition is not None and definition.key in ENUM_LABELS:
        return HomieDatatype.ENUM, None, ",".join(ENUM_LABELS[definition.key].values())
    if not is_numeric(obj):
        return HomieDatatype.STRING, None, None
    unit = reading_unit(obj, device)
    if isinstance(obj.value, int):
        return HomieDatatype.INTEGER, unit, None
    return HomieDatatype.FLOAT, unit, None


def _homie_id(key: str) -> str:
    return key.replace("_", "-").strip("-").lower()


def _value(prop: HomieProperty, obj: CosemObject) -> str | None:
    """The property's payload, or ``None`` when the reading has no valid value to publish."""
    if prop.capture_time:
        return obj.timestamp.isoformat() if obj.timestamp is not None else None
    if prop.datatype is HomieDatatype.ENUM:
        definition = obj.definition
        labels = ENUM_LABELS[definition.key] if definition is not None else {}
        return labels.get(plain_payload(obj))
    if prop.datatype is HomieDatatype.INTEGER:
        return str(obj.value) if isinstance(obj.value, int) else None
    if prop.datatype is HomieDatatype.FLOAT:
        return format(obj.value, "f") if isinstance(obj.value, Decimal | int) else None
    return plain_payload(obj)


# --- messages -----------------------------------------------------------------------------


def _device_topic(base_topic: str, device_id: str) -> str:
    if not base_topic or base_topic.endswith("/") or any(c in base_topic for c in "#+$"):
        raise UsageError(f"base_topic must be a topic without wildcards, not {base_topic!r}")
    if not _ID.match(device_id):
        raise UsageError(
            "device_id may only hold a-z, 0-9 and '-' (not first or last), "
            f"not {device_id!r} (Homie 4.0 topic ids)"
        )
    return f"{base_topic}/{device_id}"


def _retained(topic: str, payload: str) -> Message:
    return Message(topic, payload, qos=1, retain=True)


def homie_state_message(
    state: HomieState | str, *, base_topic: str = "homie", device_id: str = "p1meter"
) -> Message:
    """The retained ``$state`` message (``ready``, ``alert``, ``disconnected``...)."""
    value = HomieState(state)
    return _retained(f"{_device_topic(base_topic, device_id)}/$state", value.value)


def homie_will(*, base_topic: str = "homie", device_id: str = "p1meter") -> Message:
    """The Last Will Homie requires: ``$state`` = ``lost``, retained."""
    return homie_state_message(HomieState.LOST, base_topic=base_topic, device_id=device_id)


def homie_messages(
    telegram: Telegram,
    *,
    base_topic: str = "homie",
    device_id: str = "p1meter",
    name: str | None = None,
    include: Include | None = None,
) -> list[Message]:
    """The whole announcement, in order: ``$state`` ``init``, the attributes of the device, its
    nodes and properties, the current values, and ``$state`` ``ready`` last.

    Publish it on every (re)connection of the Homie connection. ``name`` is the device's
    ``$name`` (default ``P1 meter``); ``include(obis, key)`` applies the user's filters.
    """
    device = _device_topic(base_topic, device_id)
    nodes = homie_nodes(telegram, include=include)
    messages = [
        _retained(f"{device}/$state", HomieState.INIT.value),
        _retained(f"{device}/$homie", HOMIE_VERSION),
        _retained(f"{device}/$name", name or DEFAULT_NAME),
        _retained(f"{device}/$extensions", ""),
        _retained(f"{device}/$nodes", ",".join(node.id for node in nodes)),
    ]
    for node in nodes:
        messages += _node_messages(f"{device}/{node.id}", node)
    messages += _values(device, nodes, telegram)
    messages.append(_retained(f"{device}/$state", HomieState.READY.value))
    return messages


def _node_messages(topic: str, node: HomieNode) -> list[Message]:
    messages = [
        _retained(f"{topic}/$name", node.name),
        _retained(f"{topic}/$type", node.type),
        _retained(f"{topic}/$properties", ",".join(prop.id for prop in node.properties)),
    ]
    for prop in node.properties:
        base = f"{topic}/{prop.id}"
        messages += [
            _retained(f"{base}/$name", prop.name),
            _retained(f"{base}/$datatype", prop.datatype.value),
        ]
        if prop.unit is not None:
            messages.append(_retained(f"{base}/$unit", prop.unit))
        if prop.format is not None:
            messages.append(_retained(f"{base}/$format", prop.format))
        messages += [
            _retained(f"{base}/$settable", "false"),
            _retained(f"{base}/$retained", "true"),
        ]
    return messages


def homie_values(
    telegram: Telegram,
    *,
    base_topic: str = "homie",
    device_id: str = "p1meter",
    include: Include | None = None,
) -> list[Message]:
    """The property values of one telegram (retained), for the properties ``include`` keeps.

    Readings without a valid value (a placeholder capture time, an unknown enumeration code)
    are left out, so the last valid value stays.
    """
    device = _device_topic(base_topic, device_id)
    return _values(device, homie_nodes(telegram, include=include), telegram)


def _values(device: str, nodes: list[HomieNode], telegram: Telegram) -> list[Message]:
    messages = []
    for node in nodes:
        for prop in node.properties:
            value = _value(prop, telegram[prop.obis])
            if value is not None:
                messages.append(_retained(f"{device}/{node.id}/{prop.id}", value))
    return messages
