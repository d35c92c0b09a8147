"""The health controller's state: counters and staleness, with time passed in.

The service feeds it what happens (telegrams, rejections, port and broker events) and asks it
whether the meter went silent; it renders the ``<prefix>/health`` JSON. No clock, no threads.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from p1mqtt import __version__
from p1mqtt.protocol import BytesDiscarded, Event, FrameRejected, RejectReason, TelegramDecoded

__all__ = ["Health"]


@dataclass
class Health:
    """Counters and states of a running bridge."""

    started: float
    """Monotonic time the bridge started."""
    stale_after: float = 10.0
    telegrams_decoded: int = 0
    crc_errors: int = 0
    frames_rejected: int = 0
    bytes_discarded: int = 0
    port_reopens: int = 0
    mqtt_reconnects: int = 0
    telegrams_dropped: int = 0
    queue_depth: int = 0
    outbox_depth: int = 0
    """Telegrams kept on disk until the broker acknowledges them (store and forward)."""
    outbox_dropped: int = 0
    """Telegrams dropped from the store-and-forward queue since start (full or too old)."""
    last_telegram: float | None = None
    port_state: str = "opening"
    broker_state: str = "connecting"
    stale: bool = False
    last_rejection: str | None = None
    _stale_since: float | None = field(default=None, repr=False)

    def record(self, event: Event, now: float) -> None:
        """Count one decoder event."""
        if isinstance(event, TelegramDecoded):
            self.telegrams_decoded += 1
            self.last_telegram = now
            self.stale = False
            self._stale_since = None
        elif isinstance(event, FrameRejected):
            self.frames_rejected += 1
            if event.reason is RejectReason.CRC_MISMATCH:
                self.crc_errors += 1
            self.last_rejection = event.message
        elif isinstance(event, BytesDiscarded):
            self.bytes_discarded += event.count

    def silence(self, now: float) -> float:
        """Seconds since the last valid telegram (or since start when none came yet)."""
        return now - (self.last_telegram if self.last_telegram is not None else self.started)

    def check_stale(self, now: float) -> bool:
        """True once each time the meter has been silent for ``stale_after`` more seconds.

        The caller logs, publishes and reopens the port when it returns True; while the silence
        goes on it returns True again every ``stale_after`` seconds (so reopening is retried).
        """
        if self.silence(now) < self.stale_after:
            return False
        if self._stale_since is not None and now - self._stale_since < self.stale_after:
            return False
        self._stale_since = now
        self.stale = True
        return True

    def snapshot(self, now: float) -> dict[str, Any]:
        """The health figures as a JSON-able dict."""
        age = None if self.last_telegram is None else round(now - self.last_telegram, 1)
        return {
            "state": "stale" if self.stale else ("ok" if self.last_telegram else "waiting"),
            "port": self.port_state,
            "broker": self.broker_state,
            "telegrams_decoded": self.telegrams_decoded,
            "crc_errors": self.crc_errors,
            "frames_rejected": self.frames_rejected,
            "bytes_discarded": self.bytes_discarded,
            "port_reopens": self.port_reopens,
            "mqtt_reconnects": self.mqtt_reconnects,
            "telegrams_dropped": self.telegrams_dropped,
            "queue_depth": self.queue_depth,
            "outbox_depth": self.outbox_depth,
            "outbox_dropped": self.outbox_dropped,
            "last_telegram_age": age,
            "last_rejection": self.last_rejection,
            "uptime": round(now - self.started, 1),
            "version": __version__,
        }

    def to_json(self, now: float) -> str:
        """The ``<prefix>/health`` payload."""
        return json.dumps(self.snapshot(now), separators=(",", ":"))
