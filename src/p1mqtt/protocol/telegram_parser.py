"""From one framed telegram (``/`` ... ``!CRC`` CR LF) to a verified :class:`Telegram`."""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from p1mqtt.protocol.catalogue import mbus_medium
from p1mqtt.protocol.crc import crc16_arc
from p1mqtt.protocol.model import CosemObject, MbusDevice, RejectReason, Telegram
from p1mqtt.protocol.objects import ObjectParser

__all__ = ["Rejection", "TelegramParser", "object_key"]

_HEX = frozenset(b"0123456789abcdefABCDEF")
_READING_SUFFIXES = ("24.2.3", "24.2.1", "24.3.0")
_LAYOUT_MEMO = 16
"""Telegram layouts remembered (a meter has one; a test suite or a file of captures more)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a frame is not a valid telegram."""

    reason: RejectReason
    message: str


class TelegramParser:
    """Verifies a frame's CRC and reads its lines; never raises on bad bytes."""

    __slots__ = ("_last_mbus", "_layouts", "_objects")

    def __init__(self, objects: ObjectParser) -> None:
        self._objects = objects
        self._last_mbus: tuple[list[CosemObject], tuple[MbusDevice, ...]] = ([], ())
        self._layouts: dict[tuple[tuple[str, ...], tuple[str, ...]], Mapping[str, str]] = {}

    def parse(self, frame: bytes) -> Telegram | Rejection:
        """Turn ``frame`` (from ``/`` through the line after ``!``) into a telegram."""
        bang = frame.rfind(b"\n!")
        if not frame.startswith(b"/") or bang < 0:
            return Rejection(RejectReason.MALFORMED, "no '/' header or no '!' end line")
        body = frame[: bang + 2]
        crc_line = frame[bang + 2 :]
        crc_text = crc_line[:-2] if crc_line.endswith(b"\r\n") else crc_line[:-1]
        if not crc_line.endswith(b"\n") or len(crc_text) > 4 or not _HEX.issuperset(crc_text):
            shown = crc_line.rstrip(b"\r\n")[:16].decode("ascii", "backslashreplace")
            return Rejection(
                RejectReason.MALFORMED, f"malformed CRC line '!{shown}' (expected 0-4 hex digits)"
            )
        crc: int | None = None
        if crc_text:
            stated = int(crc_text, 16)
            computed = crc16_arc(body)
            if stated != computed:
                return Rejection(
                    RejectReason.CRC_MISMATCH,
                    f"CRC mismatch: telegram says {crc_text.decode('ascii')}, "
                    f"computed {computed:04X}",
                )
            crc = stated
        return self._read(body, crc, frame)

    def _read(self, body: bytes, crc: int | None, frame: bytes) -> Telegram:
        # latin-1 maps every byte to one character, so decoding cannot fail.
        text = body[:-1].decode("latin-1")
        lines = text.splitlines()
        if "\n(" in text:
            lines = _join_continuations(lines)
        header = lines[0][1:].strip()
        parse_object = self._objects.parse
        objects: dict[str, CosemObject] = {}
        unparsed: list[str] = []
        on_mbus: list[CosemObject] = []
        for line in lines[1:]:
            obj = parse_object(line)
            if obj is None:
                stripped = line.strip()
                if not stripped:
                    continue
                obj = parse_object(stripped)
                if obj is None:
                    unparsed.append(stripped)
                    continue
            obis = obj.obis
            if obis in objects:
                unparsed.append(line)
                continue
            objects[obis] = obj
            if obj.channel:
                on_mbus.append(obj)
        devices = self._devices(objects, on_mbus) if on_mbus else ()
        return Telegram(
            header, objects, crc, self._keys(objects, devices), devices, tuple(unparsed), frame
        )

    def _devices(
        self, objects: dict[str, CosemObject], on_mbus: list[CosemObject]
    ) -> tuple[MbusDevice, ...]:
        """The M-Bus devices; the previous telegram's when its M-Bus objects were the same
        (the line memo hands out the very same objects for unchanged lines)."""
        previous, devices = self._last_mbus
        if len(previous) == len(on_mbus) and all(
            a is b for a, b in zip(previous, on_mbus, strict=True)
        ):
            return devices
        devices = _mbus_devices(objects, on_mbus)
        self._last_mbus = (on_mbus, devices)
        return devices

    def _keys(
        self, objects: dict[str, CosemObject], devices: tuple[MbusDevice, ...]
    ) -> Mapping[str, str]:
        """Every object's stable key; memoised per layout (the codes and M-Bus device names),
        which stays the same from one telegram to the next."""
        layout = (tuple(objects), tuple(device.name for device in devices))
        keys = self._layouts.get(layout)
        if keys is None:
            by_channel = {device.channel: device for device in devices}
            keys = MappingProxyType(
                {
                    obis: object_key(obj, by_channel.get(obj.channel) if obj.channel else None)
                    for obis, obj in objects.items()
                }
            )
            if len(self._layouts) >= _LAYOUT_MEMO:
                self._layouts.clear()
            self._layouts[layout] = keys
        return keys


def _join_continuations(lines: list[str]) -> list[str]:
    """DSMR 2.2/3: the value of 0-n:24.3.0 continues on the following line(s)."""
    joined: list[str] = []
    for line in lines:
        if line[:1] == "(" and len(joined) > 1:
            joined[-1] += line.strip()
        else:
            joined.append(line)
    return joined


def _mbus_devices(
    objects: dict[str, CosemObject], on_mbus: list[CosemObject]
) -> tuple[MbusDevice, ...]:
    channels = sorted({obj.channel for obj in on_mbus})
    devices: list[MbusDevice] = []
    seen: dict[str, int] = {}
    for channel in channels:
        prefix = f"0-{channel}:"
        type_object = objects.get(prefix + "24.1.0")
        device_type = type_object.value if type_object is not None else None
        device_type = device_type if isinstance(device_type, int) else None
        medium = mbus_medium(device_type)
        reading = next(
            (found for suffix in _READING_SUFFIXES if (found := objects.get(prefix + suffix))),
            None,
        )
        id_object = objects.get(prefix + "96.1.1") or objects.get(prefix + "96.1.0")
        equipment_id = id_object.value if id_object is not None else None
        if medium is None:
            name = f"mbus{channel}"
        else:
            seen[medium.name] = seen.get(medium.name, 0) + 1
            count = seen[medium.name]
            name = medium.name if count == 1 else f"{medium.name}_{count}"
        devices.append(
            MbusDevice(
                channel,
                device_type,
                medium,
                name,
                equipment_id if isinstance(equipment_id, str) else None,
                reading,
            )
        )
    return tuple(devices)


def object_key(obj: CosemObject, device: MbusDevice | None = None) -> str:
    """The stable key of ``obj``: its catalogue key, prefixed by its M-Bus device's name.

    Codes the catalogue does not know get a key made from the code itself
    (``1-0:96.50.68`` -> ``obis_1_0_96_50_68``) so they can still be published.
    """
    definition = obj.definition
    if definition is None:
        key = "obis_" + obj.obis.replace("-", "_").replace(":", "_").replace(".", "_")
        return key if device is None else f"{device.name}_{key}"
    if device is None:
        return definition.key
    if definition.key == "reading" and device.medium is not None:
        return f"{device.name}_{device.medium.reading_key}"
    return f"{device.name}_{definition.key}"
