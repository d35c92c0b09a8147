"""From a decoded telegram to the MQTT messages to publish: topics, payloads, filters, throttle.

Topic layout under the prefix (documented in docs/topics.md):

* ``<prefix>/telegram``: the whole telegram as the JSON of ``p1mqtt decode``.
* ``<prefix>/<key>``: one topic per reading, plain value (``15.758``), by the catalogue's stable
  key; M-Bus readings by medium (``gas_volume``, ``water_volume``).
* ``<prefix>/<key>/timestamp``: the capture time of readings that carry one (gas, month peak).
* ``<prefix>/status`` and ``<prefix>/health`` are published by the service itself.

Throttling keeps state (when each reading was last published, with which payload); time is
passed in, so everything here is deterministic and testable without a clock or a broker.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase

from p1mqtt.protocol import CosemObject, Scalar, Telegram

__all__ = ["Message", "ReadingPolicy", "TopicMapper", "TopicRules", "plain_payload"]


_PAYLOAD_MEMO = 512


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message to publish."""

    topic: str
    payload: str
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class ReadingPolicy:
    """When one reading is published.

    ``min_interval``: at least this many seconds between two publications. ``on_change``: only
    when the value changed, but with ``heartbeat`` > 0 an unchanged value is re-published at
    least every ``heartbeat`` seconds.
    """

    min_interval: float = 0.0
    on_change: bool = False
    heartbeat: float = 0.0


@dataclass(frozen=True, slots=True)
class TopicRules:
    """What to publish where (built from the ``topics`` and ``filters`` configuration)."""

    prefix: str = "p1mqtt"
    telegram: bool = True
    readings: bool = True
    retain_readings: bool = True
    retain_telegram: bool = False
    qos: int = 1
    include: tuple[str, ...] = ()
    """OBIS codes or keys (fnmatch patterns); empty means every reading."""
    exclude: tuple[str, ...] = ()
    policy: ReadingPolicy = ReadingPolicy()
    overrides: Mapping[str, ReadingPolicy] = field(default_factory=dict)
    """Policy per key or OBIS code (patterns allowed), overriding ``policy``."""


def plain_payload(obj: CosemObject) -> str:
    """The plain-text payload of a reading: ``15.758``, ``2``, ``1SAG3105209493``, ISO time.

    Profile objects (the peak history, the power failure log) become a JSON list of entries.
    """
    if obj.entries is not None:
        return json.dumps(
            [
                {
                    "timestamp": _iso(entry.timestamp),
                    "value": _json_number(entry.value),
                    "unit": entry.unit,
                    **({"period": entry.period} if entry.period_end is not None else {}),
                }
                for entry in obj.entries
            ],
            separators=(",", ":"),
        )
    return _plain(obj.value)


def _plain(value: Scalar) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _json_number(value: Scalar) -> object:
    if isinstance(value, Decimal):
        return json.loads(format(value, "f"))
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _matches(patterns: Iterable[str], obis: str, key: str) -> bool:
    return any(fnmatchcase(obis, p) or fnmatchcase(key, p) for p in patterns)


@dataclass(slots=True)
class _Published:
    payload: str
    at: float


class TopicMapper:
    """Turns telegrams into messages, applying filters and per-reading throttling."""

    def __init__(self, rules: TopicRules) -> None:
        self._rules = rules
        self._last: dict[str, _Published] = {}
        self._selected: dict[tuple[str, str], tuple[bool, ReadingPolicy]] = {}
        # id(object) -> (object, payload): the decoder hands out the same object for a line
        # that did not change, and holding it keeps the id from being reused.
        self._payloads: dict[int, tuple[CosemObject, str]] = {}

    @property
    def rules(self) -> TopicRules:
        """The rules this mapper applies."""
        return self._rules

    def forget(self) -> None:
        """Forget what was published (after a broker reconnect: publish everything again)."""
        self._last.clear()

    def topic(self, key: str) -> str:
        """The topic of reading ``key``."""
        return f"{self._rules.prefix}/{key}"

    def messages(self, telegram: Telegram, telegram_json: str | None, now: float) -> list[Message]:
        """The messages for one telegram at monotonic time ``now``.

        ``telegram_json`` is the telegram's JSON text (computed once by the caller, since the
        store-and-forward queue needs it too); ``None`` skips the ``telegram`` topic.
        """
        message = self.telegram_message(telegram_json)
        readings = self.reading_messages(telegram, now)
        return readings if message is None else [message, *readings]

    def telegram_message(self, telegram_json: str | None) -> Message | None:
        """The ``<prefix>/telegram`` message of a telegram's JSON; None when that topic is off."""
        rules = self._rules
        if not rules.telegram or telegram_json is None:
            return None
        return Message(f"{rules.prefix}/telegram", telegram_json, rules.qos, rules.retain_telegram)

    def reading_messages(self, telegram: Telegram, now: float) -> list[Message]:
        """The per-reading messages due for one telegram at monotonic time ``now``."""
        rules = self._rules
        out: list[Message] = []
        if not rules.readings:
            return out
        prefix = rules.prefix
        payloads = self._payloads
        published = self._last
        for key, obj in telegram.by_key():
            wanted, policy = self._selection(obj.obis, key)
            if not wanted:
                continue
            last = published.get(key)
            if last is not None and now - last.at < policy.min_interval:
                continue  # too soon whatever the value: its payload is not even needed
            memo = payloads.get(id(obj))
            if memo is not None and memo[0] is obj:
                payload = memo[1]
            else:
                payload = plain_payload(obj)
                if len(payloads) >= _PAYLOAD_MEMO:
                    payloads.clear()
                payloads[id(obj)] = (obj, payload)
            if not self._due(key, last, payload, policy, now):  # min_interval checked above
                continue
            out.append(Message(f"{prefix}/{key}", payload, rules.qos, rules.retain_readings))
            if obj.has_timestamp and obj.timestamp is not obj.value:
                out.append(
                    Message(
                        f"{prefix}/{key}/timestamp",
                        _plain(obj.timestamp),
                        rules.qos,
                        rules.retain_readings,
                    )
                )
        return out

    def wanted(self, obis: str, key: str) -> bool:
        """Whether the filters keep the reading ``key`` (OBIS code ``obis``)."""
        return self._selection(obis, key)[0]

    def _selection(self, obis: str, key: str) -> tuple[bool, ReadingPolicy]:
        memo = self._selected.get((obis, key))
        if memo is not None:
            return memo
        rules = self._rules
        wanted = (not rules.include or _matches(rules.include, obis, key)) and not _matches(
            rules.exclude, obis, key
        )
        policy = rules.policy
        for pattern, override in rules.overrides.items():
            if fnmatchcase(key, pattern) or fnmatchcase(obis, pattern):
                policy = override
                break
        result = (wanted, policy)
        self._selected[(obis, key)] = result
        return result

    def _due(
        self, key: str, last: _Published | None, payload: str, policy: ReadingPolicy, now: float
    ) -> bool:
        """Whether ``payload`` goes out now, ``min_interval`` having passed since ``last``:
        always when it changed or ``on_change`` is off, else once the heartbeat is due."""
        if last is not None:
            elapsed = now - last.at
            if (
                policy.on_change
                and payload == last.payload
                and not (policy.heartbeat > 0 and elapsed >= policy.heartbeat)
            ):
                return False
            last.payload = payload
            last.at = now
        else:
            self._last[key] = _Published(payload, now)
        return True
