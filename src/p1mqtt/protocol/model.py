"""The typed result of decoding: telegrams, their objects and the decoder's events."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from p1mqtt.protocol.catalogue import Country, MbusMedium, ObisDefinition

__all__ = [
    "BytesDiscarded",
    "CosemObject",
    "Event",
    "FrameRejected",
    "MbusDevice",
    "ProfileEntry",
    "Reading",
    "RejectReason",
    "Scalar",
    "Telegram",
    "TelegramDecoded",
]

Scalar = Decimal | int | str | datetime | None
"""A decoded value: exact decimal, integer code, text, moment, or nothing."""


class Reading(NamedTuple):
    """One value with its unit and, when the meter gives one, its capture time."""

    value: Scalar
    unit: str | None = None
    timestamp: datetime | None = None


class ProfileEntry(NamedTuple):
    """One entry of a profile-generic object (peak history, power failure log)."""

    timestamp: datetime | None
    """When the value happened (the moment of a month's peak, the end of a power failure)."""
    value: Scalar
    unit: str | None = None
    period_end: datetime | None = None
    """End of the billing period the entry covers (``0-0:98.1.x``), when given."""
    extra: tuple[Reading, ...] = ()
    """Further values captured in the same entry (export peaks, billing registers)."""

    @property
    def period(self) -> str | None:
        """The billing month covered, ``"2024-06"``, derived from :attr:`period_end`."""
        if self.period_end is None:
            return None
        return (self.period_end - timedelta(days=1)).strftime("%Y-%m")


# Objects are NamedTuples rather than frozen dataclasses: they are built for every changed line
# of every telegram, and a tuple is built about three times faster while being just as immutable
# (the decoder shares one object between telegrams whose line did not change).
class CosemObject(NamedTuple):
    """One data line of a telegram, decoded.

    ``value`` is the object's main value. Objects that carry several values (the Luxembourg and
    Brussels fuse thresholds) list them all in ``values``; profile-generic objects list their
    entries in ``entries`` and have the number of entries as ``value``.
    """

    obis: str
    """The OBIS code exactly as in the telegram (``1-0:1.8.1``, ``0-1:24.2.3``)."""
    value: Scalar
    unit: str | None = None
    timestamp: datetime | None = None
    """The capture time, ``None`` when absent or a placeholder (see ``has_timestamp``)."""
    has_timestamp: bool = False
    """Whether the object carries a capture time at all (placeholder or not)."""
    raw: str | None = None
    """Octet strings: the hex exactly as sent."""
    values: tuple[Reading, ...] = ()
    entries: tuple[ProfileEntry, ...] | None = None
    definition: ObisDefinition | None = None
    """What the catalogue says about this code; ``None`` for codes it does not know."""
    channel: int = 0
    """The M-Bus channel (1..4) of an ``0-n:`` object, 0 for the electricity meter itself."""


class MbusDevice(NamedTuple):
    """A gas, water or heat meter attached to the electricity meter on an M-Bus channel."""

    channel: int
    device_type: int | None
    """EN 13757-3 device type from ``0-n:24.1.0`` (3 gas, 7 water, 4/12 heat)."""
    medium: MbusMedium | None
    name: str
    """Stable name used in keys and topics: ``gas``, ``water``, ``gas_2`` (a second gas meter),
    ``mbus3`` (channel 3 of unknown type)."""
    equipment_id: str | None
    reading: CosemObject | None
    """The meter reading object (``0-n:24.2.3``, ``0-n:24.2.1`` or ``0-n:24.3.0``)."""


@dataclass(frozen=True, slots=True)
class Telegram:
    """A complete, verified P1 telegram."""

    header: str
    """The identification line without the leading ``/`` (``FLU5\\253769484_A``)."""
    objects: Mapping[str, CosemObject]
    """Every object, by OBIS code exactly as in the telegram, in the meter's order."""
    crc: int | None
    """The verified CRC, or ``None`` for telegrams without one (DSMR 2.2/3)."""
    keys: Mapping[str, str]
    """Stable key of every object, by OBIS code (``gas_volume`` for the gas reading)."""
    mbus: tuple[MbusDevice, ...] = ()
    unparsed: tuple[str, ...] = ()
    """Lines that could not be read as objects (kept, never silently dropped)."""
    raw: bytes = field(default=b"", repr=False)
    """The telegram's bytes from ``/`` through the CRC line."""

    def __getitem__(self, obis: str) -> CosemObject:
        return self.objects[obis]

    def __contains__(self, obis: object) -> bool:
        return obis in self.objects

    def __iter__(self) -> Iterator[CosemObject]:
        return iter(self.objects.values())

    def get(self, obis: str) -> CosemObject | None:
        """The object with OBIS code ``obis``, or ``None``."""
        return self.objects.get(obis)

    def value(self, obis: str) -> Scalar:
        """The value of ``obis``, or ``None`` when the telegram does not have it."""
        found = self.objects.get(obis)
        return None if found is None else found.value

    @property
    def timestamp(self) -> datetime | None:
        """The meter's clock when it sent the telegram (``0-0:1.0.0``)."""
        found = self.objects.get("0-0:1.0.0")
        return found.timestamp if found is not None else None

    @property
    def country(self) -> Country:
        """Whose conventions the meter follows, guessed from its version object and header."""
        if "0-0:96.1.4" in self.objects:
            return Country.BE
        if self.header.startswith(("Lux", "LUX")):
            return Country.LU
        return Country.NL

    def by_key(self) -> Iterator[tuple[str, CosemObject]]:
        """Every object with its stable key, in telegram order."""
        keys = self.keys
        for obis, obj in self.objects.items():
            yield keys[obis], obj


class RejectReason(StrEnum):
    """Why a frame was not accepted as a telegram."""

    CRC_MISMATCH = "crc_mismatch"
    MALFORMED = "malformed"
    INCOMPLETE = "incomplete"
    TOO_LONG = "too_long"


@dataclass(frozen=True, slots=True)
class TelegramDecoded:
    """A telegram was received whole and verified."""

    telegram: Telegram
    offset: int
    """Byte position of its ``/`` in the stream fed to the decoder."""


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """Something that started like a telegram was rejected as a whole."""

    reason: RejectReason
    message: str
    """A sentence for people: what was wrong."""
    offset: int
    """Byte position of the frame's ``/`` in the stream."""
    size: int
    """How many bytes the rejected frame had."""
    frame: bytes = field(default=b"", repr=False)
    """The rejected bytes (empty for frames too long to keep)."""


@dataclass(frozen=True, slots=True)
class BytesDiscarded:
    """Bytes outside any telegram were skipped (line noise, a partial telegram at start-up)."""

    count: int
    offset: int


Event = TelegramDecoded | FrameRejected | BytesDiscarded
"""What :meth:`p1mqtt.protocol.Decoder.feed` returns."""
