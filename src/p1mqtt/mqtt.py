"""The broker edge: a small typed publisher over paho-mqtt 2.x.

:class:`MqttPublisher` connects in the background, reconnects forever with jittered exponential
backoff, queues QoS 1/2 messages while the broker is away (bounded; the oldest are dropped) and
delivers them in order once it is back. It verifies TLS certificates and host names by default,
explains every refused connection in one sentence a person can act on, and never logs the
password.

Threading: one plain (non-daemon) network thread owns the paho client; it is the only thread
that ever calls paho. Other threads only append to the outgoing queue and wake it through a
socket pair. A fresh paho client is made for every connection attempt, so messages that were in
flight when a connection broke are re-sent by us, in their original order, ahead of the queue.
"""

from __future__ import annotations

import errno
import logging
import random
import re
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from p1mqtt.errors import BrokerError, UsageError
from p1mqtt.threadnames import name_os_thread

__all__ = ["MqttPublisher", "MqttSettings", "explain_connect_error"]

logger = logging.getLogger(__name__)

#: Seconds allowed for the TCP connection and the TLS handshake, and again for the CONNACK.
CONNECT_TIMEOUT = 10.0
#: QoS>0 messages handed to paho at once, awaiting their acknowledgement.
INFLIGHT_WINDOW = 20
#: A connection that stays up this long (seconds) counts as healthy: the reconnect backoff starts
#: again from the minimum. One that breaks sooner counts as a failed attempt, so two clients
#: fighting over one client id slow down and are logged like any repeating failure.
STABLE_AFTER = 30.0
#: How often the network thread wakes up without traffic (paho's keepalive bookkeeping).
_TICK = 1.0
_MAX_PAYLOAD = 268_435_455
_MAX_TOPIC_BYTES = 65_535

# OpenSSL X509_V_ERR_* codes, as found in ssl.SSLCertVerificationError.verify_code.
_X509_UNKNOWN_ISSUER = {
    2,  # unable to get issuer certificate
    18,  # self-signed certificate
    19,  # self-signed certificate in certificate chain
    20,  # unable to get local issuer certificate
    21,  # unable to verify the first certificate
}
_X509_NOT_YET_VALID = 9
_X509_EXPIRED = 10
_X509_NAME_MISMATCH = {62, 63, 64}  # host name, e-mail, IP address mismatch
_SSL_REASON = re.compile(r"\[SSL: ([A-Z0-9_]+)\]")


@dataclass(frozen=True)
class MqttSettings:
    """Everything the publisher needs to reach one broker (independent of the config module).

    ``password`` never appears in ``repr()``. ``will_topic`` is the availability topic: the
    broker publishes ``will_payload`` there when the connection dies, ``online_payload`` is
    published there (retained) on every (re)connect and ``will_payload`` again by ``stop()``.
    """

    host: str
    port: int = 1883
    use_tls: bool = False
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    insecure: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "p1mqtt"
    keepalive: int = 60
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    reconnect_delay_min: float = 1.0
    reconnect_delay_max: float = 60.0
    queue_size: int = 10000
    will_topic: str | None = None
    will_payload: str = "offline"
    will_retain: bool = True
    will_qos: int = 1
    online_payload: str | None = "online"
    stop_payload: str | None = None
    """Published (retained) to ``will_topic`` by ``stop()``; ``None`` means ``will_payload``
    (Homie wants ``disconnected`` on a clean stop but ``lost`` as the will)."""

    def __post_init__(self) -> None:
        """Reject combinations that can never work, naming the field."""
        problems: list[str] = []
        if not self.host:
            problems.append("host must not be empty")
        if not 0 < self.port < 65536:
            problems.append(f"port must be 1..65535, not {self.port}")
        if self.protocol not in ("3.1.1", "5"):
            problems.append(f"protocol must be '3.1.1' or '5', not {self.protocol!r}")
        if self.keepalive < 0:
            problems.append(f"keepalive must be >= 0 seconds, not {self.keepalive}")
        if not 0 < self.reconnect_delay_min <= self.reconnect_delay_max:
            problems.append(
                "reconnect delays must satisfy 0 < reconnect_delay_min <= reconnect_delay_max"
            )
        if self.queue_size < 1:
            problems.append(f"queue_size must be at least 1, not {self.queue_size}")
        if self.will_qos not in (0, 1, 2):
            problems.append(f"will_qos must be 0, 1 or 2, not {self.will_qos}")
        if not self.use_tls and (self.cafile or self.certfile or self.keyfile or self.insecure):
            problems.append("cafile, certfile, keyfile and insecure need use_tls = true")
        if self.keyfile is not None and self.certfile is None:
            problems.append("keyfile is set but certfile is not")
        if self.password is not None and self.username is None:
            problems.append("password is set but username is not")
        if self.will_topic is not None:
            problem = _topic_problem(self.will_topic)
            if problem:
                problems.append(f"will_topic {problem}")
        if problems:
            raise UsageError("invalid MQTT settings: " + "; ".join(problems))

    @property
    def address(self) -> str:
        """``host:port`` as shown in messages."""
        return f"{self.host}:{self.port}"


class _Message(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool
    internal: bool = False  # availability messages: not counted as published
    on_delivered: Callable[[], None] | None = None  # never dropped from a full queue


class _Problem(NamedTuple):
    text: str
    level: int  # WARNING: may heal by itself; ERROR: needs a person to change something
    guess: bool = False  # inferred from a bare close, not read from an error or TLS alert


class _ClosingSSLSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails.

    paho drops the socket without closing it when the handshake raises, which leaks the file
    descriptor until the garbage collector notices.
    """

    def do_handshake(self, block: bool = False) -> None:
        """Do the handshake; on failure close the socket and re-raise."""
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


class MqttPublisher:
    """Publish messages to one MQTT broker, riding out broker restarts and network cuts.

    ``start()`` returns at once; a network thread connects and reconnects forever (jittered
    exponential backoff between ``reconnect_delay_min`` and ``reconnect_delay_max``) and never
    raises for network errors: they are logged, kept in :attr:`last_error` and retried. A
    refused connection is logged in one line saying why; a failure that repeats is logged once,
    then as a summary with a count every :attr:`failure_summary_interval` seconds. A connection
    that breaks within :data:`STABLE_AFTER` seconds counts as a failed attempt too, so two
    clients fighting over one client id back off and do not flood the log.

    ``publish()`` never blocks on the network. While disconnected, QoS 1/2 messages wait in a
    queue of at most ``queue_size`` messages (when it is full the oldest are dropped, counted in
    :attr:`dropped` and logged once, with the count when the broker is back); QoS 0 messages are
    dropped and counted. A retained message published while disconnected replaces a retained
    message to the same topic still waiting in the queue (the broker would keep only the newest
    anyway), so a long outage does not replay every second of latest-state topics. After a
    reconnect, messages that were in flight are re-sent first, then the queue, in publishing
    order (QoS 1 means at least once: a message whose acknowledgement was lost in the cut is
    delivered twice).

    A message published with ``on_delivered`` is never dropped from a full queue nor replaced
    (the caller bounds how many it has outstanding, e.g. the store-and-forward queue); the
    callback tells when the broker has it.

    Broker ACLs: with MQTT 5 the broker answers a denied publish with the PUBACK reason "Not
    authorized"; it is counted in :attr:`rejected` and logged once per topic. With MQTT 3.1.1
    the protocol has no way to say so: mosquitto acknowledges the message and silently drops it,
    so a denied topic cannot be detected; use MQTT 5 to see ACL problems.

    Callbacks run on the network thread: ``on_connected()`` after each successful (re)connect,
    ``on_disconnected(reason)`` when an established connection is lost. They must not block;
    they may call :meth:`publish`.
    """

    #: Seconds between summaries of a connection failure that keeps repeating.
    failure_summary_interval: float = 300.0

    def __init__(
        self,
        settings: MqttSettings,
        *,
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[str], None] | None = None,
    ) -> None:
        """Prepare a publisher; nothing touches the network until :meth:`start`."""
        self._settings = settings
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        # Reentrant: paho calls on_publish synchronously from inside client.publish(), which
        # the network thread calls with the lock held. Only the network thread calls paho, so
        # no other thread can hold this lock while waiting for a paho lock.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._pending: deque[_Message] = deque()
        # Retained messages published while disconnected, by topic: the next one replaces it.
        self._replaceable: dict[str, _Message] = {}
        self._inflight: dict[int, _Message] = {}
        self._unsent_qos0: list[tuple[paho.MQTTMessageInfo, _Message]] = []
        self._state: Literal["new", "running", "stopping", "stopped"] = "new"
        self._connected = False
        self._ever_connected = False
        self._thread_done = False
        self._last_error: str | None = None
        self._published = 0
        self._dropped = 0
        self._rejected = 0
        self._reconnects = 0
        self._connect_failures = 0
        self._drops_unreported = 0
        self._denied_topics: set[str] = set()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._ssl_context: ssl.SSLContext | None = None
        # Failure log de-duplication (network thread only).
        self._failure_key: str | None = None
        self._failure_is_flap = False
        self._failure_precise = False
        self._failure_guess = False
        self._failure_repeats = 0
        self._failure_logged_at = 0.0
        self._failures_in_row = 0
        # What happened during the current connection attempt (network thread only).
        self._session_up = False
        self._session_stable = False
        self._up_since = 0.0
        self._session_refusal: _Problem | None = None
        self._session_hint: str | None = None
        self._session_disconnect: tuple[ReasonCode, bool] | None = None
        self._subscriptions: dict[str, Callable[[str, bytes], None]] = {}
        self._wake_pending = False

    def __repr__(self) -> str:
        """Show the broker and the state, never credentials."""
        state = "connected" if self.connected else self._state
        return f"<MqttPublisher {self._settings.address} {state}>"

    # -- public API ------------------------------------------------------------------------

    @property
    def settings(self) -> MqttSettings:
        """The settings this publisher was made with."""
        return self._settings

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the connection and it is still up."""
        return self._connected  # one attribute read needs no lock; the processor asks often

    @property
    def last_error(self) -> str | None:
        """The latest connection problem as one sentence (kept after recovery), or None."""
        with self._lock:
            return self._last_error

    @property
    def published(self) -> int:
        """Messages acknowledged by the broker (QoS 1/2) or written to it (QoS 0)."""
        with self._lock:
            return self._published

    @property
    def dropped(self) -> int:
        """Messages given up: oldest dropped from a full queue, QoS 0 while disconnected."""
        with self._lock:
            return self._dropped

    @property
    def rejected(self) -> int:
        """Messages the broker refused (MQTT 5 PUBACK failure, e.g. not authorised by ACL)."""
        with self._lock:
            return self._rejected

    @property
    def reconnects(self) -> int:
        """Successful connections after the first one."""
        with self._lock:
            return self._reconnects

    @property
    def connect_failures(self) -> int:
        """Connection attempts that failed, in total."""
        with self._lock:
            return self._connect_failures

    @property
    def queued(self) -> int:
        """Messages waiting to be sent or acknowledged."""
        with self._lock:
            return len(self._pending) + len(self._inflight) + len(self._unsent_qos0)

    def start(self) -> None:
        """Start connecting in the background and return at once.

        Raises :class:`BrokerError` when the TLS files cannot be loaded (a configuration
        problem, not a network one) and :class:`UsageError` when called twice.
        """
        settings = self._settings
        with self._lock:
            if self._state != "new":
                raise UsageError("MqttPublisher.start() can be called only once")
            if settings.use_tls:
                self._ssl_context = _make_ssl_context(settings)
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._thread = threading.Thread(
                target=self._run, name=f"p1mqtt-mqtt-{settings.address}", daemon=False
            )
            self._state = "running"
        if settings.use_tls and settings.insecure:
            logger.warning(
                "TLS certificate verification is OFF for MQTT broker %s (insecure = true): "
                "anyone on the network path can pose as the broker and read the readings "
                "and the password",
                settings.address,
            )
        logger.info(
            "connecting to MQTT broker %s (MQTT %s%s)",
            settings.address,
            settings.protocol,
            ", TLS" if settings.use_tls else "",
        )
        self._thread.start()

    def subscribe(self, topic_filter: str, callback: Callable[[str, bytes], None]) -> None:
        """Receive messages on ``topic_filter`` (QoS 1), re-subscribed on every connection.

        Only before :meth:`start`. ``callback(topic, payload)`` runs on the network thread, so
        it must be quick (set a flag, queue the work) and must not call this publisher.
        """
        if self._state != "new":
            raise UsageError("MqttPublisher.subscribe must be called before start()")
        self._subscriptions[topic_filter] = callback

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        on_delivered: Callable[[], None] | None = None,
    ) -> None:
        """Queue one message for the broker; never blocks on the network.

        ``on_delivered()`` is called on the network thread once the broker acknowledged the
        message (QoS 1/2; also when an MQTT 5 broker refused it, which is counted in
        :attr:`rejected` and logged: sending it again would be refused again) or once it was
        written to the socket (QoS 0). It is never called for a message that is given up: QoS 0
        while disconnected, or whatever is still queued when :meth:`stop` ends. It must be
        quick and must not call this publisher's :meth:`flush` or :meth:`stop`.

        Raises :class:`UsageError` for an invalid topic, QoS or payload, or after ``stop()``.
        """
        problem = _topic_problem(topic)
        if problem:
            raise UsageError(f"cannot publish to topic {topic!r}: it {problem}")
        if qos not in (0, 1, 2):
            raise UsageError(f"qos must be 0, 1 or 2, not {qos!r}")
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        if len(data) > _MAX_PAYLOAD:
            raise UsageError(f"payload of {len(data)} bytes is larger than MQTT allows")
        first_drop = False
        with self._lock:
            if self._state in ("stopping", "stopped"):
                raise UsageError("publish() after stop()")
            if qos == 0 and not self._connected:
                self._dropped += 1
                return
            message = _Message(topic, data, qos, retain, on_delivered=on_delivered)
            if retain and on_delivered is None and not self._connected:
                replaced = self._replaceable.get(topic)
                if replaced is not None:
                    self._remove_pending(replaced)
                self._replaceable[topic] = message
            if len(self._pending) >= self._settings.queue_size and self._drop_oldest():
                self._drops_unreported += 1
                first_drop = self._drops_unreported == 1
            self._pending.append(message)
            # One wake-up byte per batch: the network thread drains the socket, then clears
            # the flag, then feeds; a message queued after the clear sends a new byte.
            wake = not self._wake_pending
            self._wake_pending = True
        if first_drop:
            logger.warning(
                "the MQTT queue is full (%d messages): dropping the oldest messages until the "
                "broker %s takes them again; the count follows then",
                self._settings.queue_size,
                self._settings.address,
            )
        if wake:
            self._wake()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the broker accepted the connection; return whether it did in time."""
        with self._changed:
            self._changed.wait_for(lambda: self._connected or self._thread_done, timeout)
            return self._connected

    def flush(self, timeout: float) -> bool:
        """Wait until every queued message was acknowledged (QoS 1/2) or written (QoS 0).

        Returns False when messages are still waiting after ``timeout`` seconds.
        """
        self._refuse_on_network_thread("flush")
        with self._changed:
            self._changed.wait_for(lambda: self._idle() or self._thread_done, timeout)
            return self._idle()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``will_payload`` to ``will_topic``, flush, disconnect cleanly, end the thread.

        When the broker is unreachable the queue is discarded (the broker already published
        the will when the connection died). Calling it again does nothing.
        """
        self._refuse_on_network_thread("stop")
        settings = self._settings
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._state == "new":
                self._state = "stopped"
            if self._state != "running":
                return
            self._state = "stopping"
            connected = self._connected
            if connected and settings.will_topic is not None:
                self._pending.append(
                    _Message(
                        settings.will_topic,
                        (
                            settings.will_payload
                            if settings.stop_payload is None
                            else settings.stop_payload
                        ).encode(),
                        settings.will_qos,
                        settings.will_retain,
                        internal=True,
                    )
                )
        self._wake()
        if connected:
            if not self.flush(timeout):
                logger.warning(
                    "stopping with %d MQTT messages not acknowledged by broker %s",
                    self.queued,
                    settings.address,
                )
        else:
            with self._lock:
                # Messages with on_delivered belong to a caller that keeps them (on disk).
                discarded = sum(m.on_delivered is None for m in self._pending)
                self._dropped += discarded
                self._pending.clear()
                self._replaceable.clear()
            if discarded:
                logger.warning(
                    "stopping while disconnected from MQTT broker %s: %d queued messages "
                    "are discarded",
                    settings.address,
                    discarded,
                )
        self._stop_event.set()
        self._wake()
        assert self._thread is not None  # noqa: S101 -- set by start(), state was "running"
        self._thread.join(max(0.5, deadline - time.monotonic()))
        if self._thread.is_alive():
            logger.warning(
                "the MQTT network thread did not end within %.1f s; it ends after its "
                "connection attempt times out",
                timeout,
            )
        with self._lock:
            self._state = "stopped"
        self._report_drops()

    # -- helpers for the public side -------------------------------------------------------

    def _idle(self) -> bool:
        return not (self._pending or self._inflight or self._unsent_qos0)

    def _drop_oldest(self) -> bool:
        """Drop the oldest queued message that may be dropped (lock held); False if none may."""
        for index, message in enumerate(self._pending):
            if message.on_delivered is None:
                del self._pending[index]
                if self._replaceable.get(message.topic) is message:
                    del self._replaceable[message.topic]
                self._dropped += 1
                return True
        return False

    def _remove_pending(self, message: _Message) -> None:
        """Take ``message`` out of the queue (lock held); it is usually near the end."""
        for index in range(len(self._pending) - 1, -1, -1):
            if self._pending[index] is message:
                del self._pending[index]
                return

    def _wake(self) -> None:
        with self._lock:
            wake_w = self._wake_w
        if wake_w is None:
            return
        try:
            wake_w.send(b"\0")
        except BlockingIOError:
            pass  # the buffer is full of wake-ups already: the thread will wake anyway
        except OSError as exc:
            logger.debug("cannot wake the MQTT network thread: %s", exc)

    def _refuse_on_network_thread(self, method: str) -> None:
        if self._thread is not None and threading.current_thread() is self._thread:
            raise UsageError(f"MqttPublisher.{method}() cannot be called from its callbacks")

    def _close_wake_sockets(self) -> None:
        """Close the wake-up pair; the network thread does it as it ends (lock held)."""
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None

    # -- the network thread ----------------------------------------------------------------

    def _run(self) -> None:
        name_os_thread("p1mqtt-mqtt")
        try:
            attempt = 0
            while not self._stop_event.is_set():
                was_stable = self._session()
                if self._stop_event.is_set():
                    break
                attempt = 0 if was_stable else attempt + 1
                self._stop_event.wait(self._backoff(attempt))
        except Exception:
            logger.exception(
                "the MQTT network thread failed; nothing more will be published to %s",
                self._settings.address,
            )
            with self._lock:
                self._connected = False
                self._last_error = "the MQTT network thread failed (see the log for details)"
            self._call_disconnected("the MQTT network thread failed")
        finally:
            with self._changed:
                self._thread_done = True
                self._close_wake_sockets()
                self._changed.notify_all()

    def _backoff(self, attempt: int) -> float:
        low, high = self._settings.reconnect_delay_min, self._settings.reconnect_delay_max
        ceiling = min(high, low * 2 ** min(attempt + 1, 32))
        return random.uniform(max(low, ceiling / 2), ceiling)  # noqa: S311 -- jitter, not crypto

    def _new_client(self) -> paho.Client:
        settings = self._settings
        v5 = settings.protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=None if v5 else True,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        client.connect_timeout = CONNECT_TIMEOUT
        client.max_inflight_messages_set(INFLIGHT_WINDOW)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.will_topic is not None:
            client.will_set(
                settings.will_topic,
                settings.will_payload,
                settings.will_qos,
                settings.will_retain,
            )
        if self._ssl_context is not None:
            client.tls_set_context(self._ssl_context)
            if settings.insecure:
                client.tls_insecure_set(True)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        client.on_log = self._handle_log
        client.on_message = self._handle_message
        return client

    def _session(self) -> bool:
        """Make one connection attempt and serve it until it ends; return whether it lasted."""
        settings = self._settings
        self._session_up = False
        self._session_stable = False
        self._session_refusal = None
        self._session_hint = None
        self._session_disconnect = None
        client = self._new_client()
        try:
            if settings.protocol == "5":
                client.connect(settings.host, settings.port, settings.keepalive, clean_start=True)
            else:
                client.connect(settings.host, settings.port, settings.keepalive)
        except (OSError, UnicodeError) as exc:
            self._connect_failed(_explain(exc, settings))
            return False
        try:
            self._serve(client)
        finally:
            sock = client.socket()
            if sock is not None:
                sock.close()
        self._session_ended()
        return self._session_stable

    def _serve(self, client: paho.Client) -> None:
        connack_deadline = time.monotonic() + CONNECT_TIMEOUT
        disconnect_sent = False
        wake_r = self._wake_r
        assert wake_r is not None  # noqa: S101 -- created by start() before the thread
        while True:
            if client.socket() is None:
                return
            if self._stop_event.is_set() and not disconnect_sent:
                disconnect_sent = True
                client.disconnect()
                continue
            if self._session_up:
                self._feed(client)
                if not self._session_stable and time.monotonic() - self._up_since >= STABLE_AFTER:
                    self._became_stable()
            elif time.monotonic() > connack_deadline:
                self._session_refusal = _Problem(
                    f"the broker {self._settings.address} accepted the connection but did not "
                    f"answer the MQTT CONNECT within {CONNECT_TIMEOUT:g} s; is it an MQTT broker?",
                    logging.ERROR,
                )
                client.disconnect()
                return
            sock = client.socket()
            if sock is None:
                return
            tls_buffered = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            want_write = [sock] if client.want_write() else []
            try:
                readable, writable, _ = select.select(
                    [sock, wake_r], want_write, [], 0.0 if tls_buffered else _TICK
                )
            except (OSError, ValueError):
                return
            if wake_r in readable:
                # Drain first, then clear: cleared first, a byte sent by a publish() in between
                # would be drained with the flag left set, and no publish would wake us again.
                self._drain_wake(wake_r)
                with self._lock:
                    self._wake_pending = False
            if sock in readable or tls_buffered:
                client.loop_read()
            if writable and client.socket() is not None:
                client.loop_write()
            if client.socket() is not None:
                client.loop_misc()
            self._reap_qos0()

    @staticmethod
    def _drain_wake(wake_r: socket.socket) -> None:
        try:
            while wake_r.recv(4096):
                pass
        except BlockingIOError:
            return

    def _feed(self, client: paho.Client) -> None:
        if not self._pending:
            # Read without the lock: a message queued after this look sends a wake-up byte, so
            # the next turn of the loop feeds it.
            return
        with self._changed:
            while self._pending and len(self._inflight) < INFLIGHT_WINDOW:
                message = self._pending[0]
                info = client.publish(message.topic, message.payload, message.qos, message.retain)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return  # the connection broke; the message stays first in the queue
                self._pending.popleft()
                if message.qos > 0:
                    self._inflight[info.mid] = message
                else:
                    self._unsent_qos0.append((info, message))
            self._changed.notify_all()
            caught_up = not self._pending
        if caught_up:
            self._report_drops()

    def _report_drops(self) -> None:
        with self._lock:
            unreported, self._drops_unreported = self._drops_unreported, 0
        if unreported:
            logger.warning(
                "dropped %d MQTT messages because the queue (queue_size = %d) was full",
                unreported,
                self._settings.queue_size,
            )

    def _reap_qos0(self) -> None:
        written: list[_Message] = []
        with self._changed:
            if not self._unsent_qos0:
                return
            remaining = []
            for info, message in self._unsent_qos0:
                if not info.is_published():
                    remaining.append((info, message))
                    continue
                written.append(message)
                if not message.internal:
                    self._published += 1
            self._unsent_qos0 = remaining
            self._changed.notify_all()
        for message in written:
            _notify_delivered(message)

    def _session_ended(self) -> None:
        settings = self._settings
        if not self._session_up:
            if not self._stop_event.is_set():
                self._connect_failed(self._session_refusal or self._early_close_problem())
            return
        with self._changed:
            self._connected = False
            resend = len(self._inflight)
            self._pending.extendleft(reversed(self._inflight.values()))
            self._inflight.clear()
            self._dropped += len(self._unsent_qos0)
            self._unsent_qos0.clear()
            while len(self._pending) > settings.queue_size and self._drop_oldest():
                pass
            self._changed.notify_all()
        if resend:
            logger.debug("%d unacknowledged MQTT messages go back to the queue", resend)
        if self._stop_event.is_set():
            logger.info("disconnected from MQTT broker %s", settings.address)
            return
        why = self._loss_reason()
        if self._session_stable:
            with self._lock:
                self._last_error = why
            logger.warning(
                "lost the connection to MQTT broker %s: %s; reconnecting", settings.address, why
            )
        else:
            advice = ""
            if "same client_id" not in why:
                advice = (
                    "; if this repeats, another client probably uses the same client_id "
                    f"{settings.client_id!r}: give each client its own"
                )
            self._connect_failed(
                _Problem(
                    f"the connection broke less than {STABLE_AFTER:g} s after the broker "
                    f"accepted it: {why}{advice}",
                    logging.WARNING,
                ),
                flap=True,
            )
        self._call_disconnected(why)

    def _connect_failed(self, problem: _Problem, *, flap: bool = False) -> None:
        settings = self._settings
        now = time.monotonic()
        if problem.guess and self._failure_precise and self._failure_key is not None:
            # The same refusal caught a moment later (the bare close rather than the TLS
            # alert before it, as happens by turns): count it under the precise explanation
            # already logged instead of alternating two lines at every attempt.
            problem = problem._replace(text=self._failure_key, guess=False)
        with self._lock:
            self._connect_failures += 1
            self._last_error = problem.text
        self._failures_in_row += 1
        if problem.text != self._failure_key:
            if self._failure_guess and not problem.guess:
                # The precise reason for what was only guessed so far: it replaces the guess,
                # whose repeats need no summary line of their own.
                self._failure_repeats = 0
            else:
                self._flush_failure_summary(now)
            self._failure_key = problem.text
            self._failure_is_flap = flap
            self._failure_guess = problem.guess
            self._failure_precise = not problem.guess and problem.level >= logging.ERROR
            self._failure_repeats = 0
            self._failure_logged_at = now
            logger.log(
                problem.level,
                "cannot connect to MQTT broker %s (retrying): %s",
                settings.address,
                problem.text,
            )
            return
        self._failure_repeats += 1
        if now - self._failure_logged_at >= self.failure_summary_interval:
            self._flush_failure_summary(now, level=problem.level)

    def _became_stable(self) -> None:
        self._session_stable = True
        if self._failure_is_flap:
            self._flush_failure_summary(time.monotonic())
            logger.info(
                "the connection to MQTT broker %s is stable again after %d short-lived ones",
                self._settings.address,
                self._failures_in_row,
            )
        self._failure_key = None
        self._failure_is_flap = False
        self._failures_in_row = 0

    def _flush_failure_summary(self, now: float, level: int = logging.WARNING) -> None:
        if self._failure_key is None or not self._failure_repeats:
            return
        logger.log(
            level,
            "still cannot connect to MQTT broker %s: %s (%d more failed attempts in %s)",
            self._settings.address,
            self._failure_key,
            self._failure_repeats,
            _duration(now - self._failure_logged_at),
        )
        self._failure_repeats = 0
        self._failure_logged_at = now

    # -- paho callbacks (network thread) ---------------------------------------------------

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        settings = self._settings
        if reason.is_failure:
            self._session_refusal = _explain_refusal(reason, settings)
            return
        self._session_up = True
        with self._changed:
            self._connected = True
            self._replaceable.clear()
            if self._ever_connected:
                self._reconnects += 1
            self._ever_connected = True
            if settings.will_topic is not None and settings.online_payload is not None:
                self._pending.appendleft(
                    _Message(
                        settings.will_topic,
                        settings.online_payload.encode(),
                        settings.will_qos,
                        retain=True,
                        internal=True,
                    )
                )
            self._changed.notify_all()
        for topic_filter in self._subscriptions:
            client.subscribe(topic_filter, qos=1)
        self._up_since = time.monotonic()
        if self._failure_is_flap:
            # Not over until the connection lasts: keep counting, log this at most once.
            level = logging.DEBUG if self._failure_repeats else logging.INFO
            logger.log(level, "connected to MQTT broker %s again", settings.address)
        else:
            self._flush_failure_summary(self._up_since)
            if self._failures_in_row:
                logger.info(
                    "connected to MQTT broker %s after %d failed attempts",
                    settings.address,
                    self._failures_in_row,
                )
            else:
                logger.info("connected to MQTT broker %s", settings.address)
            self._failure_key = None
            self._failures_in_row = 0
        if self._on_connected is not None:
            try:
                self._on_connected()
            except Exception:
                logger.exception("the on_connected callback failed")

    def _handle_message(
        self, client: paho.Client, userdata: Any, message: paho.MQTTMessage
    ) -> None:
        for topic_filter, callback in self._subscriptions.items():
            if paho.topic_matches_sub(topic_filter, message.topic):
                try:
                    callback(message.topic, bytes(message.payload))
                except Exception:
                    logger.exception("the callback for %s failed", topic_filter)

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._session_disconnect = (reason, flags.is_disconnect_packet_from_server)

    def _handle_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        with self._changed:
            message = self._inflight.pop(mid, None)
            if message is None:
                return  # QoS 0: counted by _reap_qos0 once paho marks it written
            first_denial = False
            if reason.is_failure:
                self._rejected += 1
                first_denial = message.topic not in self._denied_topics
                self._denied_topics.add(message.topic)
            elif not message.internal:
                self._published += 1
            self._changed.notify_all()
        _notify_delivered(message)
        if first_denial:
            advice = (
                ": the broker's ACL does not allow this user to publish there"
                if reason.value == 135
                else ""
            )
            logger.error(
                "MQTT broker %s refused a message published to %r (%s)%s; further refusals "
                "on this topic are only counted",
                self._settings.address,
                message.topic,
                reason.getName(),
                advice,
            )

    def _handle_log(self, client: paho.Client, userdata: Any, level: int, text: str) -> None:
        if level == paho.MQTT_LOG_ERR:
            self._session_hint = text
            logger.debug("paho: %s", text)

    def _call_disconnected(self, why: str) -> None:
        if self._on_disconnected is None:
            return
        try:
            self._on_disconnected(why)
        except Exception:
            logger.exception("the on_disconnected callback failed")

    # -- explaining what went wrong --------------------------------------------------------

    def _early_close_problem(self) -> _Problem:
        """The broker closed the connection before accepting it, without a CONNACK reason."""
        settings = self._settings
        hint = self._session_hint or ""
        ssl_reason = _SSL_REASON.search(hint)
        if ssl_reason:
            return _explain_ssl_reason(ssl_reason.group(1), settings)
        if settings.use_tls:
            if settings.certfile is None:
                return _Problem(
                    f"the broker {settings.address} closed the TLS connection right after the "
                    "handshake without answering; mosquitto does this when it requires a client "
                    "certificate (require_certificate) and none was sent: set certfile and "
                    "keyfile",
                    logging.ERROR,
                    guess=True,
                )
            return _Problem(
                f"the broker {settings.address} closed the TLS connection right after the "
                "handshake without answering; it probably rejected our client certificate",
                logging.ERROR,
                guess=True,
            )
        return _Problem(
            f"the broker {settings.address} closed the connection without answering the MQTT "
            "CONNECT; if this port expects TLS, set use_tls",
            logging.ERROR,
            guess=True,
        )

    def _loss_reason(self) -> str:
        detail = self._session_disconnect
        hint = self._session_hint
        if detail is not None:
            reason, from_broker = detail
            if from_broker:
                if reason.value == 142:
                    return (
                        "the broker closed it because another client connected with the same "
                        f"client_id {self._settings.client_id!r}; give each client its own id"
                    )
                return f"the broker closed it ({reason.getName()})"
            if reason.value == 141:
                return "the broker did not answer within the keepalive time"
        if hint:
            return f"the network connection broke ({hint})"
        return "the network connection closed"


# -- pure helpers ----------------------------------------------------------------------------


def _notify_delivered(message: _Message) -> None:
    """Tell the publisher of ``message`` that the broker has it (network thread, no lock)."""
    if message.on_delivered is None:
        return
    try:
        message.on_delivered()
    except Exception:
        logger.exception("the on_delivered callback for %s failed", message.topic)


def _topic_problem(topic: str) -> str | None:
    if not topic:
        return "is empty"
    if "+" in topic or "#" in topic:
        return "contains a wildcard (+ or #)"
    if "\0" in topic:
        return "contains a NUL character"
    if len(topic.encode()) > _MAX_TOPIC_BYTES:
        return "is longer than 65535 bytes"
    return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _make_ssl_context(settings: MqttSettings) -> ssl.SSLContext:
    """Build the client's TLS context: verify chain and host name unless ``insecure``."""
    cafile = str(settings.cafile) if settings.cafile is not None else None
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerError(
            f"cannot load the MQTT CA file {settings.cafile}: {_oserror_text(exc)}"
        ) from exc
    if settings.certfile is not None:
        try:
            context.load_cert_chain(
                settings.certfile,
                settings.keyfile,
                password=_no_key_password,
            )
        except (OSError, ssl.SSLError) as exc:
            keyfile = settings.keyfile or settings.certfile
            raise BrokerError(
                f"cannot load the MQTT client certificate {settings.certfile} with key "
                f"{keyfile}: {_oserror_text(exc)} (the key must be unencrypted PEM and match "
                "the certificate)"
            ) from exc
    if settings.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.sslsocket_class = _ClosingSSLSocket
    return context


def _no_key_password() -> bytes:
    """Answer OpenSSL's passphrase prompt: encrypted keys are not supported (no tty prompt)."""
    return b""


def _oserror_text(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return exc.strerror or str(exc)


def explain_connect_error(exc: BaseException, settings: MqttSettings) -> str:
    """Explain why opening a connection to the broker failed, as one actionable sentence."""
    return _explain(exc, settings).text


def _explain(exc: BaseException, settings: MqttSettings) -> _Problem:
    address = settings.address
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _explain_verification(exc, settings)
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if reason:
            return _explain_ssl_reason(reason, settings)
        if isinstance(exc, ssl.SSLEOFError):
            return _Problem(
                f"the broker {address} closed the connection during the TLS handshake",
                logging.ERROR,
            )
        return _Problem(f"the TLS handshake with {address} failed: {exc}", logging.ERROR)
    if isinstance(exc, socket.gaierror):
        return _Problem(
            f"DNS failure: the broker host name {settings.host!r} cannot be resolved "
            f"({exc.strerror}); check the host name and this machine's DNS",
            logging.WARNING,
        )
    if isinstance(exc, UnicodeError):
        return _Problem(
            f"the broker host name {settings.host!r} is not a valid host name", logging.ERROR
        )
    if isinstance(exc, ConnectionRefusedError):
        return _Problem(
            f"connection refused by {address}: nothing is listening there; check that the "
            "broker is running and that the port is right",
            logging.WARNING,
        )
    if isinstance(exc, TimeoutError):
        return _Problem(
            f"no answer from {address} within {CONNECT_TIMEOUT:g} s; check the address, the "
            "port and any firewall on the way",
            logging.WARNING,
        )
    if isinstance(exc, ConnectionResetError) and settings.use_tls:
        return _Problem(
            f"the broker {address} reset the connection during the TLS handshake; is this its "
            "TLS port?",
            logging.ERROR,
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return _Problem(
            f"the network cannot reach {address} ({exc.strerror}); check the network "
            "connection and the address",
            logging.WARNING,
        )
    if isinstance(exc, OSError):
        return _Problem(f"cannot connect to {address}: {_oserror_text(exc)}", logging.WARNING)
    return _Problem(f"cannot connect to {address}: {exc}", logging.ERROR)


def _explain_verification(exc: ssl.SSLCertVerificationError, settings: MqttSettings) -> _Problem:
    code = exc.verify_code
    detail = exc.verify_message or str(exc)
    if code in _X509_NAME_MISMATCH:
        return _Problem(
            f"TLS host name mismatch: the broker's certificate is not valid for "
            f"{settings.host!r} ({detail}); connect with a host name listed in the "
            "certificate, or reissue the certificate for this name",
            logging.ERROR,
        )
    if code == _X509_EXPIRED:
        return _Problem(
            f"the broker's TLS certificate has expired ({detail}); renew it on the broker, "
            "or check this machine's clock",
            logging.ERROR,
        )
    if code == _X509_NOT_YET_VALID:
        return _Problem(
            f"the broker's TLS certificate is not valid yet ({detail}); check this machine's clock",
            logging.ERROR,
        )
    if code in _X509_UNKNOWN_ISSUER:
        trusted = (
            f"the CA file {settings.cafile}"
            if settings.cafile is not None
            else "the system's CA store"
        )
        return _Problem(
            "TLS certificate verify failed: the broker's certificate is signed by an unknown "
            f"certificate authority (CA) that {trusted} does not contain ({detail}); set "
            "cafile to the certificate of the CA that signed the broker's certificate",
            logging.ERROR,
        )
    return _Problem(
        f"TLS certificate verify failed for the broker {settings.address}: {detail}",
        logging.ERROR,
    )


def _explain_ssl_reason(reason: str, settings: MqttSettings) -> _Problem:
    """Explain an OpenSSL reason such as TLSV1_ALERT_UNKNOWN_CA."""
    address = settings.address
    words = reason.lower().replace("_", " ")
    if reason == "CERTIFICATE_VERIFY_FAILED":
        return _Problem(
            f"TLS certificate verify failed for the broker {address}; check cafile",
            logging.ERROR,
        )
    if "ALERT" in reason:
        alert = words.split("alert ", 1)[-1]
        no_cert = settings.certfile is None
        if "CERTIFICATE_REQUIRED" in reason or (no_cert and "HANDSHAKE_FAILURE" in reason):
            return _Problem(
                f"the broker {address} requires a client certificate (mutual TLS; TLS alert: "
                f"{alert}); set certfile and keyfile",
                logging.ERROR,
            )
        if "CERTIFICATE_EXPIRED" in reason:
            return _Problem(
                f"the broker {address} rejected our client certificate because it has "
                f"expired (TLS alert: {alert}); renew {settings.certfile}",
                logging.ERROR,
            )
        if any(
            part in reason
            for part in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "DECRYPT_ERROR")
        ):
            return _Problem(
                f"the broker {address} rejected our client certificate (TLS alert: {alert}); "
                "use a client certificate signed by a CA the broker trusts",
                logging.ERROR,
            )
        if "PROTOCOL_VERSION" in reason:
            return _Problem(
                f"the broker {address} and this client have no TLS version in common "
                f"(TLS alert: {alert})",
                logging.ERROR,
            )
        return _Problem(
            f"the broker {address} ended the TLS handshake (TLS alert: {alert})", logging.ERROR
        )
    if reason in (
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "UNKNOWN_PROTOCOL",
        "PACKET_LENGTH_TOO_LONG",
        "HTTP_REQUEST",
    ):
        return _Problem(
            f"the TLS handshake with {address} failed ({words}): nothing speaks TLS on this "
            "port; use the broker's TLS port (usually 8883) or turn use_tls off",
            logging.ERROR,
        )
    return _Problem(f"the TLS handshake with {address} failed ({words})", logging.ERROR)


def _explain_refusal(reason: ReasonCode, settings: MqttSettings) -> _Problem:
    """Explain a CONNACK that refused the connection."""
    name = reason.getName()
    code = reason.value
    address = settings.address
    if code in (134, 135):  # bad user name or password / not authorized
        who = (
            "no username is set"
            if settings.username is None
            else f"check the password of user {settings.username!r}"
        )
        return _Problem(
            f"the broker {address} refused the login: not authorised (MQTT reason: {name}); "
            f"{who}, and that the broker lets this user connect",
            logging.ERROR,
        )
    if code == 133:
        return _Problem(
            f"the broker {address} rejected the client id {settings.client_id!r}; choose "
            "another client_id",
            logging.ERROR,
        )
    if code == 132:
        other = "3.1.1" if settings.protocol == "5" else "5"
        return _Problem(
            f"the broker {address} does not support MQTT {settings.protocol}; set protocol to "
            f"{other}",
            logging.ERROR,
        )
    if code in (136, 137):
        return _Problem(f"the broker {address} is unavailable or busy ({name})", logging.WARNING)
    if code == 138:
        return _Problem(f"the broker {address} has banned this client ({name})", logging.ERROR)
    return _Problem(f"the broker {address} refused the connection ({name})", logging.ERROR)
