"""Home Assistant MQTT discovery: retained sensor configs, built from a telegram and the catalogue.

Pure functions, no I/O: the service publishes what they return (retained, QoS 1) when it
connects to the broker, when the broker restarted (the configs are retained, but a broker
without persistence forgets them) and when Home Assistant announces itself with ``online`` on
:func:`ha_birth_topic`. It builds them from the first telegram, since only a telegram tells
which readings the meter has, and again when a telegram brings keys it has not announced yet.

What Home Assistant gets (docs/home-assistant.md):

* one **device** for the electricity meter, identified by its equipment id (or, without one,
  its header), manufacturer and model from the header, the P1 version as ``sw_version``;
* one device per **M-Bus meter** (gas, water, heat), linked to it with ``via_device``;
* one ``sensor`` entity per reading the telegram has (and per capture time, for the readings
  that carry one), named without the device name, with the device class, state class and unit
  Home Assistant's Energy dashboard expects; identification and configuration objects are
  diagnostic entities;
* diagnostic entities for the bridge's health figures, read from ``<prefix>/health``.

Every entity reads the plain topic the topic mapper publishes (``<prefix>/<key>``,
``<prefix>/<key>/timestamp``) and is available while ``<prefix>/status`` says ``online``.
Config topics are ``<discovery_prefix>/sensor/<node_id>/<key>/config``; unique ids are
``p1mqtt_<meter>_<key>``, so they survive restarts, and the entity ids Home Assistant creates
are ``sensor.<device name>_<key>`` (``sensor.p1_meter_energy_import_tariff_1``).
"""

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from p1mqtt import __version__
from p1mqtt.discovery._meter import (
    ENUM_LABELS,
    MeterIdentity,
    canonical_unit,
    decimals,
    is_numeric,
    mbus_device_name,
    mbus_device_of,
    meter_identity,
    reading_label,
    reading_unit,
    slug,
)
from p1mqtt.errors import UsageError
from p1mqtt.protocol import CosemObject, MbusDevice, Telegram, ValueKind
from p1mqtt.topics import Message

__all__ = [
    "DEFAULT_DEVICE_NAME",
    "DEFAULT_DISCOVERY_PREFIX",
    "HaDevice",
    "HaEntity",
    "ValueRule",
    "ha_birth_topic",
    "ha_config_subscription",
    "ha_devices",
    "ha_discovery_messages",
    "ha_entities",
    "ha_node_id",
    "ha_removal_messages",
    "value_template",
]

DEFAULT_DISCOVERY_PREFIX = "homeassistant"
DEFAULT_DEVICE_NAME = "P1 meter"
SUPPORT_URL = "https://github.com/p1mqtt/p1mqtt"
STATE_MAX_LENGTH = 255
"""Home Assistant drops text states longer than this, so text templates cut them."""

Include = Callable[[str, str], bool]
"""``include(obis, key)``: whether a reading gets an entity (the user's filters)."""

_COMPONENT = "sensor"
_TOPIC_PART = re.compile(r"^[A-Za-z0-9_-]+$")

# Units Home Assistant accepts per device class in every release since 2024 (its sensor docs,
# "Device class"). Where the meter's unit is not one of them, the entity keeps the unit and
# its state class but loses the device class: Home Assistant rejects the whole entity otherwise.
_ACCEPTED_UNITS: Mapping[str, frozenset[str | None]] = MappingProxyType(
    {
        "apparent_power": frozenset({"VA"}),
        "current": frozenset({"A", "mA"}),
        "data_size": frozenset({"B", "kB", "MB"}),
        "duration": frozenset({"s", "min", "h", "d"}),
        "energy": frozenset({"Wh", "kWh", "MWh", "MJ", "GJ"}),
        "frequency": frozenset({"Hz", "kHz"}),
        "gas": frozenset({"m³", "ft³", "CCF"}),
        "power": frozenset({"W", "kW"}),
        "power_factor": frozenset({None, "%"}),
        "reactive_energy": frozenset({"varh", "kvarh"}),
        "reactive_power": frozenset({"var", "kvar"}),
        "voltage": frozenset({"V", "mV"}),
        "water": frozenset({"m³", "L", "gal", "ft³", "CCF"}),
    }
)
_TOTALS = frozenset({"total", "total_increasing"})
_ACCEPTED_STATE_CLASSES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "apparent_power": frozenset({"measurement"}),
        "current": frozenset({"measurement"}),
        "data_size": frozenset({"measurement", *_TOTALS}),
        "duration": frozenset({"measurement", *_TOTALS}),
        "energy": _TOTALS,
        "frequency": frozenset({"measurement"}),
        "gas": _TOTALS,
        "power": frozenset({"measurement"}),
        "power_factor": frozenset({"measurement"}),
        "reactive_energy": _TOTALS,
        "reactive_power": frozenset({"measurement"}),
        "voltage": frozenset({"measurement"}),
        "water": _TOTALS,
    }
)
_CLASS_BY_UNIT: Mapping[str, str] = MappingProxyType(
    {"W": "power", "kW": "power", "A": "current", "V": "voltage", "s": "duration"}
)
"""For catalogue entries with a unit but no device class (thresholds)."""

_LATEST_ENTRY_PROFILES = frozenset({"demand_import_peak_history"})
"""Profiles whose state is their most recent month's value (the capacity tariff's peaks);
other profiles (billing registers, power failure log) show how many entries they hold."""

_DISABLED_BY_DEFAULT = frozenset({"timestamp", "device_type"})
"""Entities Home Assistant creates disabled: the meter clock changes every second (a recorder
row per second for nothing) and the M-Bus device type only repeats the device's medium."""


class ValueRule(StrEnum):
    """How an entity's state is read from its topic's payload."""

    PLAIN = "plain"
    """The payload as it is (numbers, integer codes)."""
    TEXT = "text"
    """The payload, cut to Home Assistant's 255 characters."""
    TIMESTAMP = "timestamp"
    """An ISO 8601 moment; an empty payload (a placeholder time) means unknown."""
    ENUM = "enum"
    """An integer code mapped to an option name (``labels``); other codes mean unknown."""
    JSON_FIELD = "json_field"
    """One field (``field``) of the health JSON."""
    JSON_TEXT = "json_text"
    """One text field of the health JSON, cut to 255 characters; ``null`` means unknown."""
    LATEST_ENTRY = "latest_entry"
    """A profile's JSON list: the value of the entry with the latest ``period``."""
    ENTRY_COUNT = "entry_count"
    """A profile's JSON list: how many entries it has."""


_NO_LABELS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class HaDevice:
    """One Home Assistant device: the electricity meter or an M-Bus meter behind it."""

    identifier: str
    name: str
    manufacturer: str | None = None
    model: str | None = None
    sw_version: str | None = None
    serial_number: str | None = None
    via_device: str | None = None

    def payload(self) -> dict[str, Any]:
        """The ``device`` mapping of a discovery config."""
        found: dict[str, Any] = {"identifiers": [self.identifier], "name": self.name}
        for name in ("manufacturer", "model", "sw_version", "serial_number", "via_device"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        return found


@dataclass(frozen=True, slots=True)
class HaEntity:
    """One sensor to announce, before it is written as a discovery config."""

    key: str
    """Reading key (``gas_volume``), ``<key>_timestamp`` or ``health_<field>``."""
    name: str
    """The entity's own name, without the device's."""
    unique_id: str
    state_topic: str
    device: str
    """Identifier of the :class:`HaDevice` it belongs to."""
    obis: str | None = None
    """The OBIS code it shows, ``None`` for health figures."""
    device_class: str | None = None
    state_class: str | None = None
    unit: str | None = None
    precision: int | None = None
    """Decimals to show: as many as the meter sends."""
    diagnostic: bool = False
    enabled: bool = True
    rule: ValueRule = ValueRule.PLAIN
    json_field: str | None = None
    """The health JSON field read by ``JSON_FIELD`` / ``JSON_TEXT`` rules."""
    labels: Mapping[str, str] = field(default_factory=lambda: _NO_LABELS)
    """``ENUM`` rule: plain payload -> option."""
    options: tuple[str, ...] = ()
    """``enum`` device class: every state the entity can have."""

    @property
    def numeric(self) -> bool:
        """Whether Home Assistant expects a number as state (it then rejects anything else)."""
        if self.device_class in {"enum", "timestamp", "date"}:
            return False
        return bool(self.device_class or self.state_class or self.unit)

    @property
    def json_attributes(self) -> bool:
        """Whether the payload also becomes the entity's attributes (profiles)."""
        return self.rule in {ValueRule.LATEST_ENTRY, ValueRule.ENTRY_COUNT}


# --- devices ------------------------------------------------------------------------------


def ha_node_id(telegram: Telegram) -> str:
    """The default ``<node_id>`` of the config topics: ``p1mqtt_<meter>``."""
    return f"p1mqtt_{meter_identity(telegram).slug}"


def ha_devices(telegram: Telegram, *, device_name: str = DEFAULT_DEVICE_NAME) -> list[HaDevice]:
    """The electricity meter first, then one device per M-Bus meter, linked to it."""
    meter = meter_identity(telegram)
    main = _main_identifier(meter)
    devices = [
        HaDevice(
            identifier=main,
            name=device_name,
            manufacturer=meter.manufacturer,
            model=meter.model,
            sw_version=meter.version,
            serial_number=meter.serial,
        )
    ]
    for mbus in telegram.mbus:
        devices.append(
            HaDevice(
                identifier=_mbus_identifier(meter, mbus),
                name=mbus_device_name(mbus),
                model=mbus.medium.description if mbus.medium else None,
                serial_number=mbus.equipment_id,
                via_device=main,
            )
        )
    return devices


def _main_identifier(meter: MeterIdentity) -> str:
    return f"p1mqtt_{meter.slug}"


def _mbus_identifier(meter: MeterIdentity, mbus: MbusDevice) -> str:
    return f"p1mqtt_{meter.slug}_{mbus.name}"


# --- entities -----------------------------------------------------------------------------


def ha_entities(
    telegram: Telegram,
    *,
    prefix: str,
    include: Include | None = None,
    health: bool = True,
) -> list[HaEntity]:
    """Every entity for ``telegram``: its readings (that ``include`` keeps), then health.

    ``prefix`` is the topic prefix of the plain topics (``topics.prefix``).
    """
    meter = meter_identity(telegram)
    entities: list[HaEntity] = []
    for key, obj in telegram.by_key():
        if include is not None and not include(obj.obis, key):
            continue
        mbus = mbus_device_of(telegram, obj)
        device = _mbus_identifier(meter, mbus) if mbus else _main_identifier(meter)
        base = _Base(key, f"p1mqtt_{meter.slug}_{key}", f"{prefix}/{key}", device)
        reading = _reading_entity(base, obj, mbus, telegram)
        entities.append(reading)
        if obj.has_timestamp and obj.timestamp is not obj.value:
            entities.append(_capture_time_entity(base, reading))
    if health:
        entities += _health_entities(meter, prefix)
    return entities


@dataclass(frozen=True, slots=True)
class _Base:
    key: str
    unique_id: str
    topic: str
    device: str


def _reading_entity(
    base: _Base, obj: CosemObject, mbus: MbusDevice | None, telegram: Telegram
) -> HaEntity:
    definition = obj.definition
    entity = HaEntity(
        key=base.key,
        name=reading_label(obj, mbus, telegram.country),
        unique_id=base.unique_id,
        state_topic=base.topic,
        device=base.device,
        obis=obj.obis,
        diagnostic=definition is None or definition.diagnostic,
        enabled=definition is None or definition.key not in _DISABLED_BY_DEFAULT,
    )
    if obj.entries is not None:
        return _profile_entity(entity, obj, mbus)
    if isinstance(obj.value, datetime) or (
        definition is not None and definition.kind is ValueKind.TIMESTAMP
    ):
        return replace(entity, device_class="timestamp", rule=ValueRule.TIMESTAMP)
    if definition is not None and definition.key in ENUM_LABELS:
        labels = ENUM_LABELS[definition.key]
        return replace(
            entity,
            device_class="enum",
            rule=ValueRule.ENUM,
            labels=labels,
            options=tuple(labels.values()),
        )
    if is_numeric(obj):
        return _numeric_entity(entity, obj, mbus)
    return replace(entity, rule=ValueRule.TEXT)


def _numeric_entity(entity: HaEntity, obj: CosemObject, mbus: MbusDevice | None) -> HaEntity:
    unit = reading_unit(obj, mbus)
    device_class, state_class = _classes(obj, mbus, unit)
    if device_class is None and state_class is None and unit is None:
        return entity  # an integer code (tariff, grid type): shown as it is, no statistics
    return replace(
        entity,
        device_class=device_class,
        state_class=state_class,
        unit=unit,
        precision=decimals(obj),
    )


def _classes(
    obj: CosemObject, mbus: MbusDevice | None, unit: str | None
) -> tuple[str | None, str | None]:
    """Device and state class of a number, as far as Home Assistant accepts them with ``unit``."""
    definition = obj.definition
    if definition is None:
        return None, None
    state_class = definition.state_class
    if mbus is not None and definition.key == "reading":
        device_class = mbus.medium.device_class if mbus.medium else None
    elif definition.device_class is not None:
        device_class = definition.device_class
    else:
        device_class = _CLASS_BY_UNIT.get(unit or "") if definition.unit is not None else None
    if device_class is None:
        return None, state_class
    if unit not in _ACCEPTED_UNITS.get(device_class, {unit}):
        return None, state_class
    if state_class is not None and state_class not in _ACCEPTED_STATE_CLASSES.get(
        device_class, {state_class}
    ):
        state_class = None
    return device_class, state_class


def _profile_entity(entity: HaEntity, obj: CosemObject, mbus: MbusDevice | None) -> HaEntity:
    definition = obj.definition
    if definition is not None and definition.key in _LATEST_ENTRY_PROFILES:
        unit = reading_unit(obj, mbus)
        device_class = _CLASS_BY_UNIT.get(unit or "")
        if device_class is not None and unit not in _ACCEPTED_UNITS[device_class]:
            device_class = None
        return replace(entity, device_class=device_class, unit=unit, rule=ValueRule.LATEST_ENTRY)
    return replace(entity, diagnostic=True, rule=ValueRule.ENTRY_COUNT)


def _capture_time_entity(base: _Base, reading: HaEntity) -> HaEntity:
    return HaEntity(
        key=f"{base.key}_timestamp",
        name=f"{reading.name}, time",
        unique_id=f"{base.unique_id}_timestamp",
        state_topic=f"{base.topic}/timestamp",
        device=base.device,
        obis=reading.obis,
        device_class="timestamp",
        diagnostic=reading.diagnostic,
        enabled=reading.enabled,
        rule=ValueRule.TIMESTAMP,
    )


@dataclass(frozen=True, slots=True)
class _HealthFigure:
    field: str
    name: str
    device_class: str | None = None
    state_class: str | None = None
    unit: str | None = None
    text: bool = False


_COUNTER = "total_increasing"
_HEALTH_FIGURES = (
    _HealthFigure("telegrams_decoded", "Telegrams decoded", state_class=_COUNTER),
    _HealthFigure("crc_errors", "CRC errors", state_class=_COUNTER),
    _HealthFigure("frames_rejected", "Frames rejected", state_class=_COUNTER),
    _HealthFigure("bytes_discarded", "Bytes discarded", "data_size", _COUNTER, "B"),
    _HealthFigure("port_reopens", "Port reopens", state_class=_COUNTER),
    _HealthFigure("mqtt_reconnects", "MQTT reconnects", state_class=_COUNTER),
    _HealthFigure("telegrams_dropped", "Telegrams dropped", state_class=_COUNTER),
    _HealthFigure("queue_depth", "Queue depth", state_class="measurement"),
    _HealthFigure("last_telegram_age", "Last telegram age", "duration", "measurement", "s"),
    _HealthFigure("uptime", "Uptime", "duration", unit="s"),
    _HealthFigure("port", "Serial port", text=True),
    _HealthFigure("last_rejection", "Last rejected frame", text=True),
)
HEALTH_STATES = ("waiting", "ok", "stale")
"""The values of the health JSON's ``state`` (see ``p1mqtt.health``)."""


def _health_entities(meter: MeterIdentity, prefix: str) -> list[HaEntity]:
    topic = f"{prefix}/health"
    device = _main_identifier(meter)
    entities = [
        HaEntity(
            key="health_state",
            name="Status",
            unique_id=f"p1mqtt_{meter.slug}_health_state",
            state_topic=topic,
            device=device,
            device_class="enum",
            rule=ValueRule.JSON_FIELD,
            json_field="state",
            options=HEALTH_STATES,
        )
    ]
    for figure in _HEALTH_FIGURES:
        entities.append(
            HaEntity(
                key=f"health_{figure.field}",
                name=figure.name,
                unique_id=f"p1mqtt_{meter.slug}_health_{figure.field}",
                state_topic=topic,
                device=device,
                device_class=figure.device_class,
                state_class=figure.state_class,
                unit=figure.unit,
                diagnostic=True,
                rule=ValueRule.JSON_TEXT if figure.text else ValueRule.JSON_FIELD,
                json_field=figure.field,
            )
        )
    return entities


@dataclass(frozen=True, slots=True)
class _CapacityFigure:
    field: str
    name: str
    device_class: str | None = "power"
    state_class: str | None = "measurement"
    unit: str | None = "kW"


_CAPACITY_FIGURES = (
    _CapacityFigure("quarter_projected_kw", "Quarter-hour demand projection"),
    _CapacityFigure("rolling_average_kw", "Capacity tariff 12-month average"),
    _CapacityFigure("threshold_kw", "Capacity tariff threshold"),
    _CapacityFigure("shed_kw", "Power to shed"),
    _CapacityFigure("peak_warning", "Peak warning", None, None, None),
)
_PERIODS = (("day", "today"), ("month", "this month"), ("year", "this year"))
_TOTAL_NAMES = {
    "energy_import": "Energy imported",
    "energy_export": "Energy exported",
}
_ENERGY_UNITS = frozenset({"Wh", "kWh", "MWh", "GJ", "MJ"})
_NO_UNITS: Mapping[str, str | None] = MappingProxyType({})


def _capacity_entities(meter: MeterIdentity, prefix: str) -> list[HaEntity]:
    topic = f"{prefix}/capacity"
    device = _main_identifier(meter)
    return [
        HaEntity(
            key=f"capacity_{figure.field}",
            name=figure.name,
            unique_id=f"p1mqtt_{meter.slug}_capacity_{figure.field}",
            state_topic=topic,
            device=device,
            device_class=figure.device_class,
            state_class=figure.state_class,
            unit=figure.unit,
            precision=3 if figure.unit else None,
            rule=ValueRule.JSON_FIELD,
            json_field=figure.field,
        )
        for figure in _CAPACITY_FIGURES
    ]


def _totals_entities(
    meter: MeterIdentity, prefix: str, registers: Mapping[str, str | None]
) -> list[HaEntity]:
    topic = f"{prefix}/totals"
    device = _main_identifier(meter)
    entities: list[HaEntity] = []
    for register, meter_unit in registers.items():
        unit: str | None
        device_class: str | None
        if register.startswith("energy_"):
            name = _TOTAL_NAMES.get(register)
            if name is None:
                continue  # per-tariff registers: the sums over the tariffs are enough here
            unit, device_class = "kWh", "energy"
        else:
            medium, _, reading = register.rpartition("_")  # gas_volume, hot_water_volume
            name = f"{medium.replace('_', ' ').capitalize()} {reading}"
            unit = canonical_unit(meter_unit) or ("m³" if reading == "volume" else None)
            if reading == "volume":
                device_class = "gas" if medium.startswith("gas") else "water"
            else:
                device_class = "energy" if unit in _ENERGY_UNITS else None
        for period, words in _PERIODS:
            entities.append(
                HaEntity(
                    key=f"total_{register}_{period}",
                    name=f"{name} {words}",
                    unique_id=f"p1mqtt_{meter.slug}_total_{register}_{period}",
                    state_topic=topic,
                    device=device,
                    device_class=device_class,
                    state_class="total_increasing",
                    unit=unit,
                    precision=3,
                    rule=ValueRule.JSON_FIELD,
                    json_field=f"{period}['values']['{register}']",
                )
            )
    return entities


def ha_computed_entities(
    telegram: Telegram,
    *,
    prefix: str,
    capacity: bool,
    totals: Mapping[str, str | None] = _NO_UNITS,
) -> list[HaEntity]:
    """Entities for the computed topics: ``<prefix>/capacity`` and ``<prefix>/totals``.

    ``capacity`` adds the capacity-tariff figures; ``totals`` maps the registers the totals
    JSON carries (``energy_import``, ``gas_volume``...) to the meter's unit; each is shown
    today, this month and this year.
    """
    meter = meter_identity(telegram)
    entities = _capacity_entities(meter, prefix) if capacity else []
    return entities + _totals_entities(meter, prefix, totals)


# --- templates and configs ----------------------------------------------------------------


def value_template(entity: HaEntity) -> str | None:
    """The Jinja ``value_template`` that turns the topic's payload into the entity's state.

    Templates render ``None`` for "no value": Home Assistant then shows the state as unknown
    instead of logging an invalid value.
    """
    rule = entity.rule
    if rule is ValueRule.PLAIN:
        return None
    if rule is ValueRule.TEXT:
        return f"{{{{ value[:{STATE_MAX_LENGTH}] }}}}"
    if rule is ValueRule.TIMESTAMP:
        return "{{ value if value else 'None' }}"
    if rule is ValueRule.ENUM:
        mapping = json.dumps(dict(entity.labels), separators=(", ", ": "))
        return f"{{{{ {mapping}.get(value, 'None') }}}}"
    if rule is ValueRule.JSON_FIELD:
        return f"{{{{ value_json.{entity.json_field} }}}}"
    if rule is ValueRule.JSON_TEXT:
        return f"{{{{ (value_json.{entity.json_field} or 'None')[:{STATE_MAX_LENGTH}] }}}}"
    if rule is ValueRule.LATEST_ENTRY:
        return (
            "{% set done = value_json | selectattr('period') | sort(attribute='period') | list %}"
            "{{ done[-1].value if done else 'None' }}"
        )
    return "{{ value_json | length }}"


_ATTRIBUTES_TEMPLATE = "{{ {'entries': value_json} | tojson }}"


def _origin() -> dict[str, str]:
    return {"name": "p1mqtt", "sw_version": __version__, "support_url": SUPPORT_URL}


def _config(
    entity: HaEntity, device: HaDevice, *, availability_topic: str, entity_prefix: str
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": entity.name,
        "unique_id": entity.unique_id,
        "default_entity_id": f"{_COMPONENT}.{entity_prefix}_{entity.key}",
        "state_topic": entity.state_topic,
        "availability_topic": availability_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    optional: dict[str, Any] = {
        "device_class": entity.device_class,
        "state_class": entity.state_class,
        "unit_of_measurement": entity.unit,
        "suggested_display_precision": entity.precision,
        "options": list(entity.options) if entity.options else None,
        "value_template": value_template(entity),
        "entity_category": "diagnostic" if entity.diagnostic else None,
    }
    config.update({name: value for name, value in optional.items() if value is not None})
    if entity.json_attributes:
        config["json_attributes_topic"] = entity.state_topic
        config["json_attributes_template"] = _ATTRIBUTES_TEMPLATE
    if not entity.enabled:
        config["enabled_by_default"] = False
    config["device"] = device.payload()
    config["origin"] = _origin()
    return config


def ha_discovery_messages(
    telegram: Telegram,
    *,
    prefix: str,
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
    node_id: str | None = None,
    include: Include | None = None,
    device_name: str = DEFAULT_DEVICE_NAME,
    health: bool = True,
    computed: Iterable[HaEntity] = (),
) -> list[Message]:
    """The retained (QoS 1) discovery configs for every entity of ``telegram``.

    ``prefix`` is the plain topics' prefix (entities read ``<prefix>/<key>`` and are available
    while ``<prefix>/status`` is ``online``); ``node_id`` defaults to :func:`ha_node_id`;
    ``include(obis, key)`` applies the user's filters; ``device_name`` names the electricity
    meter's device and starts every entity id; ``health`` adds the health figures;
    ``computed`` adds entities of :func:`ha_computed_entities`.
    """
    _check_topic_prefix(discovery_prefix, "discovery_prefix")
    _check_topic_prefix(prefix, "prefix")
    node = node_id if node_id is not None else ha_node_id(telegram)
    if not _TOPIC_PART.match(node):
        raise UsageError(f"node_id may only hold letters, digits, _ and -, not {node!r}")
    devices = {
        device.identifier: device for device in ha_devices(telegram, device_name=device_name)
    }
    entity_prefix = slug(device_name)
    messages = []
    entities = ha_entities(telegram, prefix=prefix, include=include, health=health)
    for entity in [*entities, *computed]:
        config = _config(
            entity,
            devices[entity.device],
            availability_topic=f"{prefix}/status",
            entity_prefix=entity_prefix,
        )
        messages.append(
            Message(
                f"{discovery_prefix}/{_COMPONENT}/{node}/{entity.key}/config",
                json.dumps(config, ensure_ascii=False, separators=(",", ":")),
                qos=1,
                retain=True,
            )
        )
    return messages


def ha_removal_messages(config_topics: Iterable[str]) -> list[Message]:
    """Empty retained messages that make Home Assistant delete the entities of ``config_topics``.

    Pass the topics of :func:`ha_discovery_messages` to remove everything (discovery switched
    off), or the retained configs found under :func:`ha_config_subscription` that the current
    discovery no longer produces (a reading filtered out since).
    """
    return [Message(topic, "", qos=1, retain=True) for topic in config_topics]


def ha_config_subscription(discovery_prefix: str, node_id: str) -> str:
    """The topic filter matching every config p1mqtt published for one meter."""
    return f"{discovery_prefix}/{_COMPONENT}/{node_id}/+/config"


def ha_birth_topic(discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> str:
    """Where Home Assistant says ``online`` when it (re)starts: re-send discovery then."""
    return f"{discovery_prefix}/status"


def _check_topic_prefix(value: str, name: str) -> None:
    if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "#+"):
        raise UsageError(f"{name} must be a topic without wildcards or edge slashes, not {value!r}")
