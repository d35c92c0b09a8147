"""The public JSON form of a telegram (``p1mqtt decode`` output and the MQTT ``telegram`` payload).

Documented field by field in ``docs/telegram-json.md``. In short::

    {"header": "FLU5\\\\253769484_A",
     "objects": {"1-0:1.8.1": {"value": 123.456, "unit": "kWh", "key": "energy_import_tariff_1"},
                 "0-1:24.2.3": {"value": 112.384, "unit": "m3",
                                "timestamp": "2020-05-12T13:45:58+02:00",
                                "key": "gas_volume", "channel": 1, "medium": "gas"}, ...}}

Numbers are written with exactly the meter's digits (``15.758``, never ``15.757999``); the
text is built directly rather than through ``json.dumps`` of floats for that reason. Each
object's JSON is memoised per (object, key), since most lines repeat every second.
"""

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from p1mqtt.protocol.model import CosemObject, MbusDevice, ProfileEntry, Reading, Scalar, Telegram

__all__ = ["TelegramJsonEncoder", "scalar_json"]

_dumps_str = json.JSONEncoder(ensure_ascii=True).encode


def scalar_json(value: Scalar) -> str:
    """The JSON text of one value: exact decimals as numbers, moments as ISO 8601 strings."""
    if value is None:
        return "null"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):  # pragma: no cover - values are never bool; keep JSON exact
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return '"' + value.isoformat() + '"'
    return _dumps_str(value)


def _reading_json(reading: Reading) -> str:
    parts = ['"value":' + scalar_json(reading.value)]
    if reading.unit is not None:
        parts.append('"unit":' + _dumps_str(reading.unit))
    if reading.timestamp is not None:
        parts.append('"timestamp":' + scalar_json(reading.timestamp))
    return "{" + ",".join(parts) + "}"


def _entry_json(entry: ProfileEntry) -> str:
    parts = [
        '"timestamp":' + scalar_json(entry.timestamp),
        '"value":' + scalar_json(entry.value),
    ]
    if entry.unit is not None:
        parts.append('"unit":' + _dumps_str(entry.unit))
    if entry.period_end is not None:
        parts.append('"period":' + _dumps_str(entry.period or ""))
        parts.append('"period_end":' + scalar_json(entry.period_end))
    if entry.extra:
        parts.append('"extra":[' + ",".join(_reading_json(r) for r in entry.extra) + "]")
    return "{" + ",".join(parts) + "}"


def object_json(obj: CosemObject, key: str, device: MbusDevice | None) -> str:
    """The JSON text of one object (without its OBIS code)."""
    value = obj.value
    text = '{"value":' + (format(value, "f") if type(value) is Decimal else scalar_json(value))
    if obj.unit is not None:
        text += ',"unit":' + _dumps_str(obj.unit)
    if obj.has_timestamp:
        text += ',"timestamp":' + scalar_json(obj.timestamp)
    if obj.raw is not None:
        text += ',"raw":' + _dumps_str(obj.raw)
    if obj.values:
        text += ',"values":[' + ",".join(_reading_json(r) for r in obj.values) + "]"
    if obj.entries is not None:
        text += ',"entries":[' + ",".join(_entry_json(e) for e in obj.entries) + "]"
    text += ',"key":' + _dumps_str(key)
    if device is not None:
        text += f',"channel":{device.channel}'
        if device.medium is not None:
            text += ',"medium":' + _dumps_str(device.medium.name)
    return text + "}"


class TelegramJsonEncoder:
    """Encodes telegrams to their public JSON text, memoising each object's fragment."""

    __slots__ = ("_cache", "_cache_size")

    def __init__(self, cache_size: int = 512) -> None:
        # id(object) -> (object, key, fragment). Holding the object keeps its id from being
        # reused while the entry lives; the decoder hands out the same object for a line that
        # did not change, so identity is the cheapest exact memo key.
        self._cache: dict[int, tuple[CosemObject, str, str]] = {}
        self._cache_size = cache_size

    def encode(self, telegram: Telegram) -> str:
        """The telegram as one line of JSON."""
        cache = self._cache
        keys = telegram.keys
        devices: dict[int, MbusDevice] | None = None
        fragments: list[str] = []
        append = fragments.append
        for obis, obj in telegram.objects.items():
            key = keys[obis]
            memo = cache.get(id(obj))
            if memo is not None and memo[0] is obj and memo[1] == key:
                append(memo[2])
                continue
            device = None
            if obj.channel:
                if devices is None:
                    devices = {device.channel: device for device in telegram.mbus}
                device = devices.get(obj.channel)
            fragment = '"' + obis + '":' + object_json(obj, key, device)
            if self._cache_size:
                if len(cache) >= self._cache_size:
                    cache.clear()
                cache[id(obj)] = (obj, key, fragment)
            append(fragment)
        text = '{"header":' + _dumps_str(telegram.header) + ',"objects":{' + ",".join(fragments)
        text += "}"
        if telegram.unparsed:
            text += ',"unparsed":' + _list_json(telegram.unparsed)
        return text + "}"


def _list_json(items: Iterable[str]) -> str:
    return "[" + ",".join(_dumps_str(item) for item in items) + "]"
