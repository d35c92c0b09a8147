"""The broker edge (p1mqtt.mqtt) against a real Mosquitto: publish, LWT, reconnect, TLS, auth."""

from __future__ import annotations

import logging
import signal
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import p1mqtt.mqtt
from mosquitto import BrokerFactory, BrokerTls, MosquittoBroker, TlsMaterial, free_port
from mqtt_helpers import Received, Subscriber, wait_until
from p1mqtt.errors import BrokerError, UsageError
from p1mqtt.mqtt import MqttPublisher, MqttSettings, explain_connect_error

pytestmark = pytest.mark.integration

#: Broker accounts: user name -> password.
USERS = {
    "meter": "correct-horse-battery-staple",
    "reader": "reader-pass-1",
    "writer": "writer-pass-2",
}

PublisherFactory = Callable[..., MqttPublisher]


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own."""
    return f"p1test/{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_publisher() -> Iterator[PublisherFactory]:
    """Build publishers with fast reconnects for a broker; all are stopped after the test."""
    publishers: list[MqttPublisher] = []

    def build(
        broker: MosquittoBroker | None = None,
        *,
        start: bool = True,
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[str], None] | None = None,
        **overrides: Any,
    ) -> MqttPublisher:
        options: dict[str, Any] = {
            "client_id": f"p1mqtt-test-{uuid.uuid4().hex[:10]}",
            "reconnect_delay_min": 0.02,
            "reconnect_delay_max": 0.1,
        }
        if broker is not None:
            options.update(host=broker.host, port=broker.port)
        options.update(overrides)
        publisher = MqttPublisher(
            MqttSettings(**options), on_connected=on_connected, on_disconnected=on_disconnected
        )
        publishers.append(publisher)
        if start:
            publisher.start()
        return publisher

    yield build
    for publisher in publishers:
        publisher.stop(timeout=2.0)


def _tls_broker(
    factory: BrokerFactory, material: TlsMaterial, server: str = "server", **options: Any
) -> MosquittoBroker:
    pair = getattr(material, server)
    return factory(tls=BrokerTls(material.ca.cert, pair.cert, pair.key, **options))


def _client_tls(material: TlsMaterial) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(material.ca.cert))
    context.load_cert_chain(material.client.cert, material.client.key)
    return context


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def _refused(publisher: MqttPublisher, failures: int = 3) -> str:
    wait_until(lambda: publisher.connect_failures >= failures, what="failed connects")
    assert not publisher.connected
    assert publisher.last_error is not None
    return publisher.last_error


# -- publishing ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_publishes_qos0_and_qos1_in_order(
    mosquitto: MosquittoBroker, make_publisher: PublisherFactory, prefix: str, protocol: str
) -> None:
    """QoS 0 and 1 messages arrive in publishing order with their QoS, over MQTT 3.1.1 and 5."""
    with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/#", qos=1) as subscriber:
        publisher = make_publisher(mosquitto, protocol=protocol)
        assert publisher.wait_connected(10)
        for i in range(10):
            publisher.publish(f"{prefix}/value", str(i), qos=i % 2)
        assert publisher.flush(10)
        received = subscriber.wait_for(10)
    assert [m.text for m in received] == [str(i) for i in range(10)]
    assert [m.qos for m in received] == [i % 2 for i in range(10)]
    assert publisher.published == 10
    assert publisher.dropped == 0


def test_a_wake_up_drained_with_another_never_leaves_the_network_thread_asleep(
    mosquitto: MosquittoBroker,
    make_publisher: PublisherFactory,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A publish() whose wake-up byte arrives while the network thread drains an earlier one
    is drained with it; later publishes must still wake the thread, not wait for its idle tick
    (made 30 s here, so a missed wake-up cannot go unnoticed)."""
    monkeypatch.setattr(p1mqtt.mqtt, "_TICK", 30.0)
    publisher = make_publisher(mosquitto)
    assert publisher.wait_connected(10)
    drain = MqttPublisher._drain_wake
    raced: list[bool] = []

    def drain_with_a_publish_racing(wake_r: socket.socket) -> None:
        if not raced:
            raced.append(True)
            publisher.publish(f"{prefix}/racing", "r", qos=1)  # its byte is drained below
        drain(wake_r)

    monkeypatch.setattr(MqttPublisher, "_drain_wake", staticmethod(drain_with_a_publish_racing))
    publisher.publish(f"{prefix}/first", "1", qos=1)
    assert publisher.flush(10)
    assert raced
    threading.Event().wait(0.2)  # the network thread is back in select(), idle
    publisher.publish(f"{prefix}/later", "2", qos=1)
    assert publisher.flush(5), "the publish did not wake the network thread"


def test_retained_message_reaches_a_later_subscriber(
    mosquitto: MosquittoBroker, make_publisher: PublisherFactory, prefix: str
) -> None:
    """A retained message is kept by the broker and handed to later subscribers as retained."""
    publisher = make_publisher(mosquitto)
    assert publisher.wait_connected(10)
    publisher.publish(f"{prefix}/state", b"\x00binary\xff", retain=True)
    assert publisher.flush(10)
    with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/state") as subscriber:
        (message,) = subscriber.wait_for(1)
    assert message == Received(f"{prefix}/state", b"\x00binary\xff", retain=True, qos=1)


def test_online_is_published_retained_on_connect(
    mosquitto: MosquittoBroker, make_publisher: PublisherFactory, prefix: str
) -> None:
    """On connect the availability topic gets online_payload, retained."""
    connected = threading.Event()
    publisher = make_publisher(mosquitto, will_topic=f"{prefix}/status", on_connected=connected.set)
    assert connected.wait(10)
    assert publisher.flush(10)
    with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/status") as subscriber:
        (message,) = subscriber.wait_for(1)
    assert (message.text, message.retain) == ("online", True)
    assert publisher.published == 0  # availability messages are not counted as readings


def test_stop_publishes_offline_retained(
    mosquitto: MosquittoBroker, make_publisher: PublisherFactory, prefix: str
) -> None:
    """stop() sends will_payload retained, after every reading, then disconnects cleanly."""
    status = f"{prefix}/status"
    with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/#") as subscriber:
        publisher = make_publisher(mosquitto, will_topic=status)
        assert publisher.wait_connected(10)
        publisher.publish(f"{prefix}/value", "42")
        publisher.stop()
        received = subscriber.wait_for(3)
    assert [(m.topic, m.text) for m in received] == [
        (status, "online"),
        (f"{prefix}/value", "42"),
        (status, "offline"),
    ]
    assert not publisher.connected
    with Subscriber(mosquitto.host, mosquitto.port, status) as later:
        (message,) = later.wait_for(1)
    assert (message.text, message.retain) == ("offline", True)
    with pytest.raises(UsageError):
        publisher.publish(f"{prefix}/value", "too late")


_CHILD = """
import sys, threading
from p1mqtt.mqtt import MqttPublisher, MqttSettings
host, port, client_id, status = sys.argv[1:5]
MqttPublisher(MqttSettings(host=host, port=int(port), client_id=client_id,
                           will_topic=status)).start()
threading.Event().wait()
"""


def test_killed_process_leaves_offline_will(mosquitto: MosquittoBroker, prefix: str) -> None:
    """When the process dies without stop(), the broker publishes the will: offline, retained."""
    status = f"{prefix}/status"
    with Subscriber(mosquitto.host, mosquitto.port, status) as subscriber:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, mosquitto.host, str(mosquitto.port), prefix, status]
        )
        try:
            subscriber.wait_for(lambda ms: [m.text for m in ms] == ["online"], timeout=20)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        received = subscriber.wait_for(2)
    assert [m.text for m in received] == ["online", "offline"]
    with Subscriber(mosquitto.host, mosquitto.port, status) as later:
        (message,) = later.wait_for(1)
    assert (message.text, message.retain) == ("offline", True)


def test_broker_restart_delivers_every_message_once_in_order(
    mosquitto_factory: BrokerFactory, make_publisher: PublisherFactory, prefix: str
) -> None:
    """QoS 1 messages published before, during and after a broker restart arrive once, in order."""
    broker = mosquitto_factory(persistence=True)
    topic = f"{prefix}/data"
    disconnected = threading.Event()
    reasons: list[str] = []

    def lost(why: str) -> None:
        reasons.append(why)
        disconnected.set()

    # A persistent session: the broker keeps our messages while the subscriber reconnects.
    with Subscriber(
        broker.host, broker.port, topic, client_id=f"{prefix}-sub", clean_session=False
    ) as subscriber:
        publisher = make_publisher(broker, on_disconnected=lost)
        assert publisher.wait_connected(10)
        for i in range(10):
            publisher.publish(topic, str(i))
        assert publisher.flush(10)
        subscriber.wait_for(10)

        broker.stop()
        assert disconnected.wait(10)
        assert not publisher.connected
        for i in range(10, 30):
            publisher.publish(topic, str(i))
        wait_until(lambda: publisher.connect_failures >= 3, what="retries while down")
        assert publisher.queued == 20

        broker.start()
        wait_until(lambda: publisher.reconnects == 1, what="the reconnect")
        for i in range(30, 40):
            publisher.publish(topic, str(i))
        publisher.publish(topic, "end")
        assert publisher.flush(10)
        subscriber.wait_for(lambda ms: any(m.text == "end" for m in ms), timeout=20)

    # dup: the broker re-sending to the subscriber what it delivered before the stop.
    received = [m.text for m in subscriber.messages if not m.dup]
    assert received == [str(i) for i in range(40)] + ["end"]
    assert publisher.published == 41
    assert publisher.dropped == 0
    assert len(reasons) == 1


def test_messages_in_flight_when_the_broker_stops_are_resent_in_order(
    mosquitto_factory: BrokerFactory, make_publisher: PublisherFactory, prefix: str
) -> None:
    """Stopping the broker mid-burst loses nothing; first arrivals keep publishing order."""
    broker = mosquitto_factory(persistence=True)
    topic = f"{prefix}/burst"
    disconnected = threading.Event()
    with Subscriber(
        broker.host, broker.port, topic, client_id=f"{prefix}-sub", clean_session=False
    ) as subscriber:
        publisher = make_publisher(broker, on_disconnected=lambda why: disconnected.set())
        assert publisher.wait_connected(10)
        for i in range(300):
            publisher.publish(topic, str(i))
        broker.stop()
        assert disconnected.wait(10)
        broker.start()
        assert publisher.flush(20)
        subscriber.wait_for(lambda ms: any(m.text == "299" for m in ms), timeout=20)
    first_arrivals = list(dict.fromkeys(m.text for m in subscriber.messages))
    assert first_arrivals == [str(i) for i in range(300)]


def test_full_queue_drops_the_oldest_and_logs_once_with_count(
    mosquitto: MosquittoBroker,
    make_publisher: PublisherFactory,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While disconnected the queue keeps the newest queue_size messages; drops are logged once."""
    caplog.set_level(logging.INFO, logger="p1mqtt.mqtt")
    topic = f"{prefix}/data"
    publisher = make_publisher(mosquitto, start=False, queue_size=5)
    for i in range(8):
        publisher.publish(topic, str(i))
    publisher.publish(topic, "qos0 while offline", qos=0)
    assert publisher.dropped == 4
    assert len(_messages(caplog, "queue is full")) == 1
    with Subscriber(mosquitto.host, mosquitto.port, topic) as subscriber:
        publisher.start()
        assert publisher.flush(10)
        received = subscriber.wait_for(5)
    assert [m.text for m in received] == ["3", "4", "5", "6", "7"]
    (summary,) = _messages(caplog, "dropped 3 MQTT messages")
    assert summary.levelno == logging.WARNING


# -- failures, explained once ------------------------------------------------------------------


def test_refused_connection_is_logged_once_then_summarised(
    make_publisher: PublisherFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listening: one line says so; repeats only come back as a summary with a count."""
    caplog.set_level(logging.INFO, logger="p1mqtt.mqtt")
    publisher = make_publisher(host="127.0.0.1", port=free_port(), start=False)
    publisher.failure_summary_interval = 0.3
    publisher.start()
    error = _refused(publisher, failures=5)
    assert "connection refused" in error
    assert "nothing is listening" in error
    first = [r for r in caplog.records if r.getMessage().startswith("cannot connect")]
    assert len(first) == 1
    assert first[0].levelno == logging.WARNING
    wait_until(lambda: bool(_messages(caplog, "more failed attempts")), what="a summary")
    summary = _messages(caplog, "more failed attempts")[0].getMessage()
    assert summary.startswith("still cannot connect")
    assert "connection refused" in summary


def test_client_id_fight_is_explained_once_not_flooded(
    mosquitto: MosquittoBroker, make_publisher: PublisherFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Two clients with one client id kick each other out: that is said once per publisher."""
    caplog.set_level(logging.INFO, logger="p1mqtt.mqtt")
    first = make_publisher(mosquitto, client_id="p1mqtt-twin", protocol="5")
    assert first.wait_connected(10)
    second = make_publisher(mosquitto, client_id="p1mqtt-twin", protocol="5")
    wait_until(
        lambda: first.connect_failures + second.connect_failures >= 10, what="a takeover fight"
    )
    errors = [first.last_error or "", second.last_error or ""]
    assert any("same client_id 'p1mqtt-twin'" in error for error in errors)
    explained = _messages(caplog, "same client_id")
    assert 1 <= len(explained) <= 2
    assert len(_messages(caplog, "connected to MQTT broker")) <= 4


def test_connection_errors_are_explained_in_words() -> None:
    """DNS failures, refusals and time-outs become sentences a person can act on."""
    settings = MqttSettings(host="broker.invalid", port=8883)
    dns = explain_connect_error(socket.gaierror(socket.EAI_NONAME, "Name not known"), settings)
    assert "DNS failure" in dns
    assert "'broker.invalid'" in dns
    refused = explain_connect_error(ConnectionRefusedError(111, "Refused"), settings)
    assert "nothing is listening" in refused
    assert "no answer" in explain_connect_error(TimeoutError("timed out"), settings)


def test_settings_hide_the_password_and_reject_nonsense() -> None:
    """repr(settings) never shows the password; impossible combinations raise UsageError."""
    settings = MqttSettings(host="h", username="u", password=USERS["meter"])
    assert USERS["meter"] not in repr(settings)
    assert USERS["meter"] not in repr(MqttPublisher(settings))
    with pytest.raises(UsageError, match="use_tls"):
        MqttSettings(host="h", cafile=Path("/ca.pem"))
    with pytest.raises(UsageError, match="port"):
        MqttSettings(host="h", port=0)
    with pytest.raises(UsageError, match="wildcard"):
        MqttPublisher(settings).publish("a/+/b", "x")


def test_unreadable_tls_files_raise_broker_error(tmp_path: Path) -> None:
    """A missing CA file is a configuration error raised by start(), naming the file."""
    missing = tmp_path / "missing-ca.pem"
    publisher = MqttPublisher(MqttSettings(host="127.0.0.1", use_tls=True, cafile=missing))
    with pytest.raises(BrokerError, match=r"missing-ca\.pem"):
        publisher.start()


# -- TLS --------------------------------------------------------------------------------------


def test_tls_with_the_right_ca_is_accepted(
    mosquitto_factory: BrokerFactory,
    make_publisher: PublisherFactory,
    tls_material: TlsMaterial,
    prefix: str,
) -> None:
    """A broker certificate signed by cafile, for this host name, is accepted."""
    broker = _tls_broker(mosquitto_factory, tls_material)
    context = ssl.create_default_context(cafile=str(tls_material.ca.cert))
    with Subscriber(broker.host, broker.port, f"{prefix}/#", tls_context=context) as subscriber:
        publisher = make_publisher(broker, use_tls=True, cafile=tls_material.ca.cert)
        assert publisher.wait_connected(10)
        publisher.publish(f"{prefix}/value", "over tls")
        assert [m.text for m in subscriber.wait_for(1)] == ["over tls"]


def test_tls_unknown_ca_is_refused(
    mosquitto_factory: BrokerFactory,
    make_publisher: PublisherFactory,
    tls_material: TlsMaterial,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broker certificate from a CA we do not trust is refused, saying so once."""
    broker = _tls_broker(mosquitto_factory, tls_material)
    publisher = make_publisher(broker, use_tls=True, cafile=tls_material.other_ca.cert)
    error = _refused(publisher)
    assert "verify failed" in error
    assert "unknown certificate authority" in error
    assert len(_messages(caplog, "unknown certificate authority")) == 1


def test_tls_system_store_refuses_a_private_ca(
    mosquitto_factory: BrokerFactory, make_publisher: PublisherFactory, tls_material: TlsMaterial
) -> None:
    """Without cafile the system CA store is used, which does not know a private CA."""
    broker = _tls_broker(mosquitto_factory, tls_material)
    error = _refused(make_publisher(broker, use_tls=True), failures=1)
    assert "system's CA store" in error


def test_tls_wrong_host_name_is_refused(
    mosquitto_factory: BrokerFactory, make_publisher: PublisherFactory, tls_material: TlsMaterial
) -> None:
    """A trusted certificate issued for another host name is refused, naming the mismatch."""
    broker = _tls_broker(mosquitto_factory, tls_material, server="wrong_host")
    publisher = make_publisher(broker, use_tls=True, cafile=tls_material.ca.cert)
    error = _refused(publisher, failures=1)
    assert "host name mismatch" in error
    assert "'127.0.0.1'" in error


def test_tls_expired_certificate_is_refused(
    mosquitto_factory: BrokerFactory, make_publisher: PublisherFactory, tls_material: TlsMaterial
) -> None:
    """An expired broker certificate is refused, saying it expired."""
    broker = _tls_broker(mosquitto_factory, tls_material, server="expired")
    publisher = make_publisher(broker, use_tls=True, cafile=tls_material.ca.cert)
    assert "has expired" in _refused(publisher, failures=1)


def test_tls_insecure_connects_and_warns(
    mosquitto_factory: BrokerFactory,
    make_publisher: PublisherFactory,
    tls_material: TlsMaterial,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """insecure = true accepts any certificate, and start() warns about it."""
    broker = _tls_broker(mosquitto_factory, tls_material, server="wrong_host")
    publisher = make_publisher(broker, use_tls=True, insecure=True)
    assert publisher.wait_connected(10)
    (warning,) = _messages(caplog, "verification is OFF")
    assert warning.levelno == logging.WARNING


def test_mutual_tls_accepts_our_client_certificate(
    mosquitto_factory: BrokerFactory,
    make_publisher: PublisherFactory,
    tls_material: TlsMaterial,
    prefix: str,
) -> None:
    """A broker that requires client certificates accepts one signed by its CA."""
    broker = _tls_broker(mosquitto_factory, tls_material, require_certificate=True)
    context = _client_tls(tls_material)
    with Subscriber(broker.host, broker.port, f"{prefix}/#", tls_context=context) as subscriber:
        publisher = make_publisher(
            broker,
            use_tls=True,
            cafile=tls_material.ca.cert,
            certfile=tls_material.client.cert,
            keyfile=tls_material.client.key,
        )
        assert publisher.wait_connected(10)
        publisher.publish(f"{prefix}/value", "mtls")
        assert [m.text for m in subscriber.wait_for(1)] == ["mtls"]


def test_mutual_tls_without_client_certificate_is_refused(
    mosquitto_factory: BrokerFactory, make_publisher: PublisherFactory, tls_material: TlsMaterial
) -> None:
    """Without a client certificate the refusal says one is required."""
    broker = _tls_broker(mosquitto_factory, tls_material, require_certificate=True)
    publisher = make_publisher(broker, use_tls=True, cafile=tls_material.ca.cert)
    error = _refused(publisher, failures=1)
    assert "client certificate" in error
    assert "certfile" in error


def test_mutual_tls_with_a_foreign_client_certificate_is_refused(
    mosquitto_factory: BrokerFactory, make_publisher: PublisherFactory, tls_material: TlsMaterial
) -> None:
    """A client certificate from a CA the broker does not trust is reported as rejected."""
    broker = _tls_broker(mosquitto_factory, tls_material, require_certificate=True)
    publisher = make_publisher(
        broker,
        use_tls=True,
        cafile=tls_material.ca.cert,
        certfile=tls_material.other_client.cert,
        keyfile=tls_material.other_client.key,
    )
    assert "rejected our client certificate" in _refused(publisher, failures=1)


# -- authentication and ACLs ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_username_and_password_are_accepted(
    mosquitto_factory: BrokerFactory,
    make_publisher: PublisherFactory,
    prefix: str,
    protocol: str,
) -> None:
    """The right username and password log in."""
    broker = mosquitto_factory(users=USERS)
    with Subscriber(
        broker.host, broker.port, f"{prefix}/#", username="reader", password=USERS["reader"]
    ) as subscriber:
        publisher = make_publisher(
            broker, username="meter", password=USERS["meter"], protocol=protocol
        )
        assert publisher.wait_connected(10)
        publisher.publish(f"{prefix}/value", "authenticated")
        assert [m.text for m in subscriber.wait_for(1)] == ["authenticated"]


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_wrong_password_is_refused_without_leaking_it(
    mosquitto_factory: BrokerFactory,
    make_publisher: PublisherFactory,
    caplog: pytest.LogCaptureFixture,
    protocol: str,
) -> None:
    """A wrong password is refused as 'not authorised'; it is never logged or shown."""
    caplog.set_level(logging.DEBUG)
    broker = mosquitto_factory(users=USERS)
    wrong = "wrong-" + USERS["meter"]
    publisher = make_publisher(broker, username="meter", password=wrong, protocol=protocol)
    error = _refused(publisher)
    assert "not authorised" in error
    assert "'meter'" in error
    assert len(_messages(caplog, "not authorised")) == 1
    publisher.stop()
    shown = [caplog.text, repr(publisher.settings), repr(publisher), error]
    shown += [repr(r.args) for r in caplog.records]
    assert not [text for text in shown if wrong in text or USERS["meter"] in text]


ACL = """
user writer
topic write {prefix}/allowed/#

user reader
topic read #
"""


def test_acl_denial_is_reported_once_per_topic_with_mqtt5(
    mosquitto_factory: BrokerFactory,
    make_publisher: PublisherFactory,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With MQTT 5 a publish the ACL denies is counted as rejected and logged once per topic."""
    broker = mosquitto_factory(users=USERS, acl=ACL.format(prefix=prefix))
    with Subscriber(
        broker.host, broker.port, f"{prefix}/#", username="reader", password=USERS["reader"]
    ) as subscriber:
        publisher = make_publisher(
            broker, username="writer", password=USERS["writer"], protocol="5"
        )
        assert publisher.wait_connected(10)
        publisher.publish(f"{prefix}/denied/a", "1")
        publisher.publish(f"{prefix}/denied/a", "2")
        publisher.publish(f"{prefix}/denied/b", "3")
        publisher.publish(f"{prefix}/allowed/x", "4")
        assert publisher.flush(10)
        assert [m.text for m in subscriber.wait_for(1)] == ["4"]
    assert (publisher.rejected, publisher.published) == (3, 1)
    denials = _messages(caplog, "refused a message published to")
    assert [r.levelno for r in denials] == [logging.ERROR, logging.ERROR]
    assert f"'{prefix}/denied/a'" in denials[0].getMessage()
    assert "Not authorized" in denials[0].getMessage()
    assert "ACL" in denials[0].getMessage()


def test_acl_denial_is_invisible_with_mqtt311(
    mosquitto_factory: BrokerFactory, make_publisher: PublisherFactory, prefix: str
) -> None:
    """Pins the documented limitation: MQTT 3.1.1 brokers acknowledge denied publishes."""
    broker = mosquitto_factory(users=USERS, acl=ACL.format(prefix=prefix))
    publisher = make_publisher(broker, username="writer", password=USERS["writer"])
    assert publisher.wait_connected(10)
    publisher.publish(f"{prefix}/denied/a", "1")
    assert publisher.flush(10)
    assert (publisher.rejected, publisher.published) == (0, 1)
