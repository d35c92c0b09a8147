"""Helpers for integration tests that talk to a real broker: a collecting subscriber, waits.

Nothing here sleeps to synchronise: every wait is on a condition, with a timeout, and a timeout
fails the test with what was seen so far.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


@dataclass(frozen=True)
class Received:
    """One message as the subscriber got it (``dup``: a redelivery by the broker)."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    dup: bool = False

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8."""
        return self.payload.decode()


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, *, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds.

    For state that offers nothing to wait on (counters of another object); prefer an Event.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.01)


def _at_least(count: int) -> Callable[[list[Received]], bool]:
    return lambda messages: len(messages) >= count


class Subscriber:
    """A paho client that subscribes to topic filters and records every message, in order.

    Thread-safe; re-subscribes after the broker comes back. Use as a context manager or call
    :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic_filter: str | Sequence[str],
        *,
        qos: int = 1,
        protocol: Literal["3.1.1", "5"] = "3.1.1",
        client_id: str | None = None,
        clean_session: bool = True,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """Configure the subscriber; ``clean_session=False`` keeps a broker-side session."""
        self.host = host
        self.port = port
        self.filters = [topic_filter] if isinstance(topic_filter, str) else list(topic_filter)
        self.qos = qos
        self.client_id = client_id or f"test-sub-{uuid.uuid4().hex[:12]}"
        v5 = protocol == "5"
        self._clean = clean_session
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if v5 else clean_session,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        )
        self._v5 = v5
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls_context is not None:
            self._client.tls_set_context(tls_context)
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._lock = threading.Condition()
        self._messages: list[Received] = []
        self._subscribed = False
        self._problem: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Subscriber:
        """Connect and wait until the broker confirmed the subscription."""
        if self._v5:
            properties = None
            if not self._clean:
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = 3600
            self._client.connect_async(
                self.host, self.port, 30, clean_start=self._clean, properties=properties
            )
        else:
            self._client.connect_async(self.host, self.port, 30)
        self._client.loop_start()
        try:
            self.wait_subscribed(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Disconnect and end paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Subscriber:
        """Start."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop."""
        self.stop()

    # -- what was received -----------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        """A copy of everything received so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    def payloads(self, topic: str | None = None) -> list[str]:
        """Decoded payloads received so far (only on ``topic`` when given)."""
        return [m.text for m in self.messages if topic is None or m.topic == topic]

    def clear(self) -> None:
        """Forget what was received."""
        with self._lock:
            self._messages.clear()

    def wait_for(
        self,
        expected: int | Callable[[list[Received]], bool],
        timeout: float = 10.0,
    ) -> list[Received]:
        """Wait until ``expected`` messages arrived (or the predicate holds); return them all.

        Fails the test with what arrived when the timeout passes.
        """
        predicate = _at_least(expected) if isinstance(expected, int) else expected
        with self._lock:
            if not self._lock.wait_for(lambda: predicate(self._messages), timeout):
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {expected!r}; received "
                    f"{len(self._messages)}: {self._messages[-20:]!r}"
                )
            return list(self._messages)

    def wait_subscribed(self, timeout: float = 10.0) -> None:
        """Wait until the broker acknowledged the subscription (again, after a reconnect)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._subscribed or self._problem, timeout):
                raise AssertionError(
                    f"subscriber {self.client_id} not subscribed to {self.filters} at "
                    f"{self.host}:{self.port} after {timeout} s"
                )
            if self._problem:
                raise AssertionError(self._problem)

    # -- paho callbacks --------------------------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            with self._lock:
                self._problem = f"subscriber refused by the broker: {reason.getName()}"
                self._lock.notify_all()
            return
        client.subscribe([(f, self.qos) for f in self.filters])

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._lock:
            failed = [r.getName() for r in reasons if r.is_failure]
            if failed:
                self._problem = f"subscription refused: {failed}"
            else:
                self._subscribed = True
            self._lock.notify_all()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._subscribed = False
            self._lock.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        received = Received(
            message.topic, bytes(message.payload), bool(message.retain), message.qos, message.dup
        )
        with self._lock:
            self._messages.append(received)
            self._lock.notify_all()
