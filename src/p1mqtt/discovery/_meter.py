"""What every discovery flavour says about a meter: identity, labels, units, enumerations.

Home Assistant discovery and the Homie tree present the same readings; the presentation rules
they share live here so the two cannot drift apart. Everything is derived from the telegram and
the OBIS catalogue (``p1mqtt.protocol``), never repeated.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from p1mqtt.protocol import CosemObject, Country, MbusDevice, Telegram, ValueKind, describe

__all__ = [
    "ENUM_LABELS",
    "MeterIdentity",
    "canonical_unit",
    "decimals",
    "is_numeric",
    "mbus_device_name",
    "mbus_device_of",
    "meter_identity",
    "reading_label",
    "reading_unit",
    "slug",
]

_UNITS: Mapping[str, str] = MappingProxyType(
    {
        "m3": "m³",
        "M3": "m³",
        "kWh": "kWh",
        "KWH": "kWh",
        "kwh": "kWh",
        "MWh": "MWh",
        "kW": "kW",
        "KW": "kW",
        "kw": "kW",
        "kVAr": "kvar",
        "kVAR": "kvar",
        "KVAR": "kvar",
        "VAr": "var",
        "VAR": "var",
        "kVArh": "kvarh",
        "kVARh": "kvarh",
        "KVARH": "kvarh",
        "VArh": "varh",
        "VARh": "varh",
        "l": "L",
    }
)
"""Meter spellings whose Home Assistant / openHAB spelling differs; others are kept as sent."""

ENUM_LABELS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        # e-MUCS H / DSMR disconnect control: 0 disconnected, 1 connected, 2 ready to reconnect.
        "breaker_state": MappingProxyType(
            {"0": "disconnected", "1": "connected", "2": "ready_for_reconnection"}
        ),
        # M-Bus gas valve (0-n:24.4.0): 0 closed, 1 open, 2 ready to open.
        "valve_state": MappingProxyType({"0": "closed", "1": "open", "2": "ready_to_open"}),
    }
)
"""Plain payload -> state name, by catalogue key, for the readings that are enumerations."""

_FLAGS: Mapping[str, str] = MappingProxyType(
    {
        "ENE": "Sagemcom",
        "FLU": "Fluvius",
        "ISK": "Iskraemeco",
        "KFM": "Kaifa",
        "KMP": "Kamstrup",
        "SAG": "Sagemcom",
        "SIB": "Sibelga",
        "XMX": "Xemex",
    }
)
"""Manufacturer names of the header's three-letter flag, where well known."""

_ID_KEYS = ("equipment_id", "meter_id", "logical_device_name", "meter_serial")
_PARENTHESIS = re.compile(r"\s*\([^)]*\)$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """``text`` as a lower-case identifier of letters, digits and ``_`` (``"meter"`` if empty)."""
    return _NOT_SLUG.sub("_", text.lower()).strip("_") or "meter"


def canonical_unit(unit: str | None) -> str | None:
    """The meter's unit as Home Assistant and openHAB spell it (``m3`` -> ``m³``)."""
    if unit is None or not unit.strip():
        return None
    unit = unit.strip()
    return _UNITS.get(unit, unit)


@dataclass(frozen=True, slots=True)
class MeterIdentity:
    """Who the electricity meter is, as far as its telegram tells."""

    slug: str
    """Stable identifier: the equipment id (or, without one, the header) as a slug."""
    serial: str | None
    manufacturer: str | None
    """From the header's flag (``ISK`` -> Iskraemeco), the flag itself when not well known."""
    model: str | None
    """The header's identification after the flag (``2M550T-1012``)."""
    version: str | None
    """The P1 interface version (``e-MUCS 50217``, ``DSMR 5.0``)."""


def meter_identity(telegram: Telegram) -> MeterIdentity:
    """The identity of the meter that sent ``telegram``."""
    serial = _meter_serial(telegram)
    header = telegram.header
    return MeterIdentity(
        slug=slug(serial if serial else header),
        serial=serial,
        manufacturer=_manufacturer(header),
        model=_model(header),
        version=_interface_version(telegram),
    )


def _conventional(header: str) -> bool:
    """Whether the header reads ``XXXZ...``: a three-letter flag, then the baud rate digit."""
    return header[:3].isalpha() and header[3:4].isdigit()


def _manufacturer(header: str) -> str | None:
    if not _conventional(header):
        return None
    flag = header[:3]
    return _FLAGS.get(flag.upper(), flag)


def _model(header: str) -> str | None:
    if "\\" in header:
        model = header.split("\\", 1)[1]
    elif _conventional(header):
        model = header[4:]
    else:
        model = header
    return model.strip() or None


def _meter_serial(telegram: Telegram) -> str | None:
    found: dict[str, str] = {}
    for key, obj in telegram.by_key():
        if obj.channel == 0 and key in _ID_KEYS and isinstance(obj.value, str):
            text = obj.value.strip()
            if text:
                found[key] = text
    return next((found[key] for key in _ID_KEYS if key in found), None)


def _interface_version(telegram: Telegram) -> str | None:
    emucs = telegram.value("0-0:96.1.4")
    if isinstance(emucs, str) and emucs.strip():
        return f"e-MUCS {emucs.strip()}"
    dsmr = telegram.value("1-3:0.2.8")
    if dsmr is None:
        return None
    text = str(dsmr).strip()
    dotted = f"{text[0]}.{text[1]}" if len(text) == 2 and text.isdigit() else text
    return f"DSMR {dotted}" if telegram.country is Country.NL else f"P1 {dotted}"


def mbus_device_of(telegram: Telegram, obj: CosemObject) -> MbusDevice | None:
    """The M-Bus device an object belongs to, ``None`` for the electricity meter's own."""
    if obj.channel == 0:
        return None
    return next((device for device in telegram.mbus if device.channel == obj.channel), None)


def mbus_device_name(device: MbusDevice) -> str:
    """A person's name for an M-Bus device: ``Gas meter``, ``Gas meter 2``, ``M-Bus device 3``."""
    medium = device.medium
    if medium is None:
        return f"M-Bus device {device.channel}"
    base = medium.description
    if "meter" not in base.lower():
        base += " meter"
    number = device.name.removeprefix(medium.name).lstrip("_")
    return f"{base} {number}" if number else base


def reading_label(obj: CosemObject, device: MbusDevice | None, country: Country) -> str:
    """The reading's name, without the device's (``Energy imported, tariff 1 (day)``).

    Tariff registers say day/night (Belgium) or low/normal (the Netherlands) from the catalogue;
    other explanatory parentheses are dropped; M-Bus readings are named within their device
    (``Volume`` on the gas meter).
    """
    definition = obj.definition
    if definition is None:
        return f"OBIS {obj.obis}"
    if device is not None and definition.key == "reading":
        return device.medium.reading_key.capitalize() if device.medium else "Reading"
    label = describe(definition, country)
    if definition.tariff is None:
        label = _PARENTHESIS.sub("", label)
    if device is not None:
        label = label.removeprefix("M-Bus ")
    return label[:1].upper() + label[1:]


def reading_unit(obj: CosemObject, device: MbusDevice | None) -> str | None:
    """The unit to announce: the telegram's own, else the medium's or the catalogue's."""
    unit = canonical_unit(obj.unit)
    if unit is not None:
        return unit
    definition = obj.definition
    if definition is None:
        return None
    if device is not None and device.medium is not None and definition.key == "reading":
        return canonical_unit(device.medium.unit)
    return canonical_unit(definition.unit)


def is_numeric(obj: CosemObject) -> bool:
    """Whether the reading's plain payload is a number (or would be, once the meter sends one)."""
    value = obj.value
    if isinstance(value, bool):  # pragma: no cover - values are never bool
        return False
    if isinstance(value, Decimal | int):
        return obj.entries is None
    if value is None and obj.definition is not None:
        return obj.definition.kind in {ValueKind.NUMBER, ValueKind.CAPTURED, ValueKind.LEGACY_MBUS}
    return False


def decimals(obj: CosemObject) -> int | None:
    """How many decimals the meter sends for a number (``002601.234`` -> 3), else ``None``."""
    value = obj.value
    if not isinstance(value, Decimal):
        return None
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or (exponent >= 0 and value == 0):
        return None  # a placeholder such as (00000000) says nothing about the digits to come
    return max(0, -exponent)
