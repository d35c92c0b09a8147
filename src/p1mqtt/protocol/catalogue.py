"""The one catalogue of OBIS objects, as data.

Every part of p1mqtt that needs to know what an OBIS code means reads this table: the parser
(how to read the value), the topics (stable keys), Home Assistant discovery (device and state
classes) and the documentation. Nothing else repeats it.

Keys are stable, readable identifiers (``energy_import_tariff_1``) that never change with the
country: registers are named by tariff *number*, as e-MUCS H §3.3.1 advises, and only the
human labels say day/night, which differ per country (Belgium: tariff 1 = day/normal,
tariff 2 = night/low; the Netherlands: the reverse).

M-Bus objects (``0-n:...`` with n = 1..4) are listed once with ``n`` as the channel; which medium
a channel carries is read from its ``0-n:24.1.0`` device type, never from the channel number.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "CATALOGUE",
    "MBUS_MEDIA",
    "Country",
    "MbusMedium",
    "ObisDefinition",
    "ValueKind",
    "describe",
    "lookup",
    "mbus_medium",
]


class ValueKind(StrEnum):
    """How the bracketed groups of an object are laid out and read."""

    NUMBER = "number"
    """``(value*unit)``: an exact decimal with its unit."""
    INTEGER = "integer"
    """``(0002)``: an integer code (tariff, breaker state, device type, counts)."""
    TEXT = "text"
    """``(50217)``: a short plain string; hex is decoded when it is clearly hex text."""
    OCTET_STRING = "octet_string"
    """``(3153...)``: text sent as hex (ids, messages); decoded, the hex kept as ``raw``."""
    TIMESTAMP = "timestamp"
    """``(YYMMDDhhmmssX)``: the value itself is a moment."""
    CAPTURED = "captured"
    """``(TST)(value*unit)``: a value with the time it was captured."""
    PROFILE = "profile"
    """``(n)(capture objects...)(entry)...``: a list of captured values (logs, history)."""
    LEGACY_MBUS = "legacy_mbus"
    """DSMR 2.2/3 ``0-n:24.3.0(TST)(00)(60)(1)(0-n:24.2.1)(m3)`` + value on the next line."""


class Country(StrEnum):
    """Whose tariff numbering to use for labels."""

    BE = "BE"
    NL = "NL"
    LU = "LU"


_TARIFF_LABELS: Mapping[Country, Mapping[int, str]] = MappingProxyType(
    {
        Country.BE: MappingProxyType({1: "day", 2: "night"}),
        Country.NL: MappingProxyType({1: "low", 2: "normal"}),
        Country.LU: MappingProxyType({}),
    }
)


@dataclass(frozen=True, slots=True)
class ObisDefinition:
    """What one OBIS code means and how to read and present it."""

    code: str
    """The OBIS code, ``0-n:`` for M-Bus objects (n = channel)."""
    key: str
    """Stable readable key; for M-Bus objects the suffix after the medium (``volume``)."""
    description: str
    kind: ValueKind
    unit: str | None = None
    """The unit the meter normally sends (informational; the telegram's own unit wins)."""
    device_class: str | None = None
    """Home Assistant sensor device_class."""
    state_class: str | None = None
    """Home Assistant sensor state_class."""
    tariff: int | None = None
    """Tariff number for registers per tariff, so labels can say day/night per country."""
    diagnostic: bool = False
    """Identification/configuration rather than a measurement (HA entity_category)."""

    @property
    def is_mbus(self) -> bool:
        """Whether this object lives on an M-Bus channel (``0-n:``)."""
        return self.code.startswith("0-n:")


@dataclass(frozen=True, slots=True)
class MbusMedium:
    """What an M-Bus device type (EN 13757-3) is and how its reading is named."""

    name: str
    """Key prefix and topic part: ``gas``, ``water``, ``heat``..."""
    reading_key: str
    """Name of the meter reading: ``volume`` or ``energy``."""
    description: str
    device_class: str | None
    unit: str


MBUS_MEDIA: Mapping[int, MbusMedium] = MappingProxyType(
    {
        2: MbusMedium("electricity", "energy", "Sub-meter electricity", "energy", "kWh"),
        3: MbusMedium("gas", "volume", "Gas", "gas", "m3"),
        4: MbusMedium("heat", "energy", "Heat", "energy", "GJ"),
        6: MbusMedium("hot_water", "volume", "Hot water", "water", "m3"),
        7: MbusMedium("water", "volume", "Water", "water", "m3"),
        10: MbusMedium("cooling", "energy", "Cooling", "energy", "GJ"),
        11: MbusMedium("cooling", "energy", "Cooling", "energy", "GJ"),
        12: MbusMedium("heat", "energy", "Heat", "energy", "GJ"),
        13: MbusMedium("heat", "energy", "Heat/cooling", "energy", "GJ"),
        22: MbusMedium("cold_water", "volume", "Cold water", "water", "m3"),
    }
)


def mbus_medium(device_type: int | None) -> MbusMedium | None:
    """The medium of an M-Bus device type code, or ``None`` when unknown."""
    if device_type is None:
        return None
    return MBUS_MEDIA.get(device_type)


def _build() -> dict[str, ObisDefinition]:
    d = ObisDefinition
    k = ValueKind
    # (unit, Home Assistant device_class, state_class), passed positionally after the kind.
    energy = ("kWh", "energy", "total_increasing")
    reactive_energy = ("kvarh", "reactive_energy", "total_increasing")
    power = ("kW", "power", "measurement")
    reactive_power = ("kvar", "reactive_power", "measurement")
    voltage = ("V", "voltage", "measurement")
    current = ("A", "current", "measurement")
    entries: list[ObisDefinition] = [
        # Identification and configuration
        d("1-3:0.2.8", "p1_version", "P1 version (DSMR)", k.TEXT, diagnostic=True),
        d("0-0:96.1.4", "emucs_version", "P1 version (e-MUCS)", k.TEXT, diagnostic=True),
        d(
            "0-0:1.0.0",
            "timestamp",
            "Date and time of the telegram",
            k.TIMESTAMP,
            device_class="timestamp",
            diagnostic=True,
        ),
        d("0-0:96.1.1", "equipment_id", "Equipment identifier", k.OCTET_STRING, diagnostic=True),
        d("0-0:96.1.0", "meter_id", "Meter identifier", k.OCTET_STRING, diagnostic=True),
        d("1-0:0.0.0", "meter_serial", "Meter serial number", k.OCTET_STRING, diagnostic=True),
        d(
            "0-0:42.0.0",
            "logical_device_name",
            "Logical device name",
            k.OCTET_STRING,
            diagnostic=True,
        ),
        d("0-0:96.1.2", "ean", "EAN code of the connection", k.OCTET_STRING, diagnostic=True),
        d(
            "1-0:94.32.1",
            "grid_type",
            "Grid type (230 = 3x230 V, 400 = 3Nx400 V)",
            k.INTEGER,
            diagnostic=True,
        ),
        d("0-0:96.14.0", "tariff", "Tariff indicator", k.INTEGER),
        d(
            "0-0:96.3.10",
            "breaker_state",
            "Breaker state (0 off, 1 on, 2 ready to reconnect)",
            k.INTEGER,
            diagnostic=True,
        ),
        d(
            "0-0:17.0.0",
            "limiter_threshold",
            "Limiter threshold",
            k.NUMBER,
            unit="kW",
            diagnostic=True,
        ),
        d(
            "1-0:31.4.0",
            "fuse_threshold_l1",
            "Fuse supervision threshold L1",
            k.NUMBER,
            unit="A",
            diagnostic=True,
        ),
        d(
            "1-0:51.4.0",
            "fuse_threshold_l2",
            "Fuse supervision threshold L2",
            k.NUMBER,
            unit="A",
            diagnostic=True,
        ),
        d(
            "1-0:71.4.0",
            "fuse_threshold_l3",
            "Fuse supervision threshold L3",
            k.NUMBER,
            unit="A",
            diagnostic=True,
        ),
        d(
            "1-1:31.4.0",
            "fuse_threshold",
            "Fuse supervision threshold",
            k.NUMBER,
            unit="A",
            diagnostic=True,
        ),
        d("0-0:96.13.0", "text_message", "Text message", k.OCTET_STRING),
        d("0-0:96.13.1", "message_code", "Consumer message code", k.OCTET_STRING),
        # Energy registers
        d("1-0:1.8.0", "energy_import_total", "Energy imported, total", k.NUMBER, *energy),
        d("1-0:2.8.0", "energy_export_total", "Energy exported, total", k.NUMBER, *energy),
        d("1-0:15.8.0", "energy_absolute_total", "Energy, absolute total", k.NUMBER, *energy),
        d(
            "1-0:3.8.0",
            "reactive_energy_import_total",
            "Reactive energy imported, total",
            k.NUMBER,
            *reactive_energy,
        ),
        d(
            "1-0:4.8.0",
            "reactive_energy_export_total",
            "Reactive energy exported, total",
            k.NUMBER,
            *reactive_energy,
        ),
        # Power
        d("1-0:1.7.0", "power_import", "Power imported", k.NUMBER, *power),
        d("1-0:2.7.0", "power_export", "Power exported", k.NUMBER, *power),
        d(
            "1-0:3.7.0",
            "reactive_power_import",
            "Reactive power imported",
            k.NUMBER,
            *reactive_power,
        ),
        d(
            "1-0:4.7.0",
            "reactive_power_export",
            "Reactive power exported",
            k.NUMBER,
            *reactive_power,
        ),
        d(
            "1-0:13.7.0",
            "power_factor",
            "Power factor",
            k.NUMBER,
            device_class="power_factor",
            state_class="measurement",
        ),
        d(
            "1-0:14.7.0",
            "frequency",
            "Grid frequency",
            k.NUMBER,
            unit="Hz",
            device_class="frequency",
            state_class="measurement",
        ),
        # Capacity tariff (Belgium, e-MUCS 1.7+)
        d(
            "1-0:1.4.0",
            "demand_import_quarter",
            "Average import demand, running quarter-hour",
            k.NUMBER,
            *power,
        ),
        d(
            "1-0:2.4.0",
            "demand_export_quarter",
            "Average export demand, running quarter-hour",
            k.NUMBER,
            *power,
        ),
        d(
            "1-0:1.6.0",
            "demand_import_month_peak",
            "Peak import demand, this month",
            k.CAPTURED,
            *power,
        ),
        d(
            "1-0:2.6.0",
            "demand_export_month_peak",
            "Peak export demand, this month",
            k.CAPTURED,
            *power,
        ),
        d(
            "0-0:98.1.0",
            "demand_import_peak_history",
            "Peak import demand, last 13 months",
            k.PROFILE,
            unit="kW",
        ),
        d("0-0:98.1.1", "billing_history", "Monthly billing registers", k.PROFILE),
        # Power quality (DSMR, Luxembourg)
        d(
            "0-0:96.7.21",
            "power_failures",
            "Number of power failures",
            k.INTEGER,
            state_class="total_increasing",
            diagnostic=True,
        ),
        d(
            "0-0:96.7.9",
            "long_power_failures",
            "Number of long power failures",
            k.INTEGER,
            state_class="total_increasing",
            diagnostic=True,
        ),
        d(
            "1-0:99.97.0",
            "power_failure_log",
            "Power failure event log",
            k.PROFILE,
            unit="s",
            diagnostic=True,
        ),
        # M-Bus devices (gas, water, heat), channel n
        d("0-n:24.1.0", "device_type", "M-Bus device type", k.INTEGER, diagnostic=True),
        d(
            "0-n:96.1.0",
            "equipment_id",
            "M-Bus equipment identifier",
            k.OCTET_STRING,
            diagnostic=True,
        ),
        d(
            "0-n:96.1.1",
            "equipment_id",
            "M-Bus equipment identifier",
            k.OCTET_STRING,
            diagnostic=True,
        ),
        d("0-n:96.1.2", "ean", "M-Bus EAN code", k.OCTET_STRING, diagnostic=True),
        d(
            "0-n:24.2.1",
            "reading",
            "M-Bus meter reading (temperature corrected in NL)",
            k.CAPTURED,
            state_class="total_increasing",
        ),
        d(
            "0-n:24.2.3",
            "reading",
            "M-Bus meter reading (not temperature corrected, BE gas)",
            k.CAPTURED,
            state_class="total_increasing",
        ),
        d(
            "0-n:24.3.0",
            "reading",
            "M-Bus meter reading (DSMR 2.2/3)",
            k.LEGACY_MBUS,
            state_class="total_increasing",
        ),
        d(
            "0-n:24.4.0",
            "valve_state",
            "Valve state (0 closed, 1 open, 2 ready to open)",
            k.INTEGER,
            diagnostic=True,
        ),
        d("0-n:96.3.10", "switch_state", "M-Bus channel state", k.INTEGER, diagnostic=True),
    ]
    for tariff in range(1, 6):
        entries += [
            d(
                f"1-0:1.8.{tariff}",
                f"energy_import_tariff_{tariff}",
                f"Energy imported, tariff {tariff}",
                k.NUMBER,
                *energy,
                tariff=tariff,
            ),
            d(
                f"1-0:2.8.{tariff}",
                f"energy_export_tariff_{tariff}",
                f"Energy exported, tariff {tariff}",
                k.NUMBER,
                *energy,
                tariff=tariff,
            ),
        ]
    for quadrant, code in enumerate(("5", "6", "7", "8"), start=1):
        entries += [
            d(
                f"1-0:{code}.8.0",
                f"reactive_energy_q{quadrant}",
                f"Reactive energy, quadrant {quadrant}",
                k.NUMBER,
                *reactive_energy,
            ),
            d(
                f"1-0:{code}.7.0",
                f"reactive_power_q{quadrant}",
                f"Reactive power, quadrant {quadrant}",
                k.NUMBER,
                *reactive_power,
            ),
        ]
    for phase, base in ((1, 20), (2, 40), (3, 60)):
        p = f"l{phase}"
        up = f"L{phase}"
        entries += [
            d(f"1-0:{base + 1}.7.0", f"power_import_{p}", f"Power imported {up}", k.NUMBER, *power),
            d(f"1-0:{base + 2}.7.0", f"power_export_{p}", f"Power exported {up}", k.NUMBER, *power),
            d(
                f"1-0:{base + 3}.7.0",
                f"reactive_power_import_{p}",
                f"Reactive power imported {up}",
                k.NUMBER,
                *reactive_power,
            ),
            d(
                f"1-0:{base + 4}.7.0",
                f"reactive_power_export_{p}",
                f"Reactive power exported {up}",
                k.NUMBER,
                *reactive_power,
            ),
            d(f"1-0:{base + 11}.7.0", f"current_{p}", f"Current {up}", k.NUMBER, *current),
            d(f"1-0:{base + 12}.7.0", f"voltage_{p}", f"Voltage {up}", k.NUMBER, *voltage),
            d(
                f"1-0:{base + 13}.7.0",
                f"power_factor_{p}",
                f"Power factor {up}",
                k.NUMBER,
                device_class="power_factor",
                state_class="measurement",
            ),
            d(
                f"1-0:{base + 12}.32.0",
                f"voltage_sags_{p}",
                f"Voltage sags {up}",
                k.INTEGER,
                state_class="total_increasing",
                diagnostic=True,
            ),
            d(
                f"1-0:{base + 12}.36.0",
                f"voltage_swells_{p}",
                f"Voltage swells {up}",
                k.INTEGER,
                state_class="total_increasing",
                diagnostic=True,
            ),
        ]
    for number in range(2, 6):
        entries.append(
            d(
                f"0-0:96.13.{number}",
                f"text_message_{number}",
                f"Text message {number}",
                k.OCTET_STRING,
            )
        )
    table: dict[str, ObisDefinition] = {}
    for entry in entries:
        if entry.code in table:
            raise AssertionError(f"duplicate catalogue entry {entry.code}")  # pragma: no cover
        table[entry.code] = entry
    return table


CATALOGUE: Mapping[str, ObisDefinition] = MappingProxyType(_build())
"""Every known OBIS code (M-Bus codes with ``0-n:``) and its definition."""


def lookup(obis: str) -> ObisDefinition | None:
    """The definition of ``obis`` as it appears in a telegram, or ``None`` when unknown."""
    found = CATALOGUE.get(obis)
    if found is not None:
        return found
    if obis.startswith("0-") and obis[3:4] == ":" and obis[2] in "1234":
        return CATALOGUE.get("0-n:" + obis[4:])
    return None


def describe(definition: ObisDefinition, country: Country | str = Country.BE) -> str:
    """Human label for ``definition``, saying day/night for tariff registers per country."""
    if definition.tariff is None:
        return definition.description
    label = _TARIFF_LABELS.get(Country(country), {}).get(definition.tariff)
    return f"{definition.description} ({label})" if label else definition.description


def iter_definitions() -> Iterator[ObisDefinition]:
    """All definitions, in catalogue order (for documentation and discovery)."""
    return iter(CATALOGUE.values())
