"""TLS and credentials through the real bridge: `python -m p1mqtt run` against real Mosquittos.

Certificates are made for the session (``tls_material``); each test starts its own broker and
reads what the bridge tells its user on stderr (at DEBUG, the most talkative level, so that a
secret leaking at any level is caught).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meter_pty import PtyMeter
from mosquitto import BrokerFactory, BrokerTls, MosquittoBroker, TlsMaterial
from mqtt_helpers import Received, Subscriber, wait_until
from test_serial_faults import BridgeProcess, child_env

pytestmark = pytest.mark.integration

SECRET = "s3cret-Pa55word-9f41"  # noqa: S105 - a test broker's password, looked for in output
"""The password of user ``meter``: must never appear in any output."""
WRONG = "wr0ng-Pa55word-7c2e"
READER = "reader-Pa55word-51aa"
USERS = {"meter": SECRET, "reader": READER}
BridgeStarter = Callable[..., BridgeProcess]


@pytest.fixture
def start_bridge(tmp_path: Path, meter: PtyMeter) -> Iterator[BridgeStarter]:
    """Start `p1mqtt run` for a broker URL with extra flags/environment; killed at the end."""
    started: list[BridgeProcess] = []

    def start(broker_url: str, *flags: str, **env: str) -> BridgeProcess:
        args = ["--port", str(meter.path), "--broker", broker_url, "--prefix", "sec", *flags]
        bridge = BridgeProcess(args, child_env(tmp_path, **env))
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        if bridge.alive():
            bridge.process.kill()
            bridge.stop()


def tls_broker(
    factory: BrokerFactory,
    material: TlsMaterial,
    server: str = "server",
    *,
    require_certificate: bool = False,
    users: dict[str, str] | None = None,
) -> MosquittoBroker:
    """A broker with a TLS listener presenting ``material.<server>``."""
    pair = getattr(material, server)
    return factory(
        tls=BrokerTls(material.ca.cert, pair.cert, pair.key, require_certificate),
        users=users,
    )


def client_context(material: TlsMaterial, *, client_cert: bool = False) -> ssl.SSLContext:
    """A TLS context trusting the test CA (and presenting the client certificate)."""
    context = ssl.create_default_context(cafile=str(material.ca.cert))
    if client_cert:
        context.load_cert_chain(material.client.cert, material.client.key)
    return context


def mqtts(broker: MosquittoBroker) -> str:
    """The broker's mqtts:// URL."""
    return f"mqtts://{broker.host}:{broker.port}"


def online(messages: list[Received]) -> bool:
    """A Subscriber predicate: the bridge marked itself online."""
    return any(m.topic == "sec/status" and m.payload == b"online" for m in messages)


def connection_attempts(broker: MosquittoBroker) -> int:
    """Connections the broker saw. Mosquitto logs one whose TLS handshake fails at once as
    "Client connection from ... failed", not "New connection from" (seen: 2 of 30 attempts)."""
    log = broker.log_text()
    return log.count("New connection from") + log.count("Client connection from")


def assert_refused_and_running(bridge: BridgeProcess, broker: MosquittoBroker, why: str) -> str:
    """The bridge explains ``why`` once, keeps retrying, and stops cleanly; return the line."""
    line = bridge.wait_for_line(why)
    assert "cannot connect to MQTT broker" in line
    # Retries go on (the broker sees them) while the log stays quiet: the explanation once
    # (twice when a bare close happened to come before the precise TLS alert), no summary yet.
    wait_until(
        lambda: connection_attempts(broker) >= 6,
        timeout=20,
        what="six connection attempts at the broker",
    )
    assert bridge.alive()
    assert len(bridge.lines("cannot connect to MQTT broker")) <= 2, bridge.log
    assert not bridge.lines("still cannot connect"), bridge.log
    assert bridge.stop() == 0
    assert SECRET not in bridge.log
    return line


def test_tls_with_the_right_ca_is_accepted(
    mosquitto_factory: BrokerFactory, tls_material: TlsMaterial, start_bridge: BridgeStarter
) -> None:
    """mqtts:// with --cafile of the broker's CA: status 'online' reaches a TLS subscriber."""
    broker = tls_broker(mosquitto_factory, tls_material)
    context = client_context(tls_material)
    with Subscriber(broker.host, broker.port, "sec/#", tls_context=context) as subscriber:
        bridge = start_bridge(mqtts(broker), "--cafile", str(tls_material.ca.cert))
        subscriber.wait_for(online, timeout=15)
        assert "TLS" in bridge.wait_for_line("connecting to MQTT broker")
        assert bridge.stop() == 0
        subscriber.wait_for(
            lambda ms: ms[-1].topic == "sec/status" and ms[-1].payload == b"offline"
        )
    assert not bridge.lines(levels=("WARNING", "ERROR")), bridge.log


def test_tls_unknown_ca_is_refused_and_explained(
    mosquitto_factory: BrokerFactory, tls_material: TlsMaterial, start_bridge: BridgeStarter
) -> None:
    """A broker certificate from a CA not in --cafile: 'certificate verify failed: unknown CA'."""
    broker = tls_broker(mosquitto_factory, tls_material)
    bridge = start_bridge(mqtts(broker), "--cafile", str(tls_material.other_ca.cert))
    line = assert_refused_and_running(bridge, broker, "certificate verify failed")
    assert "unknown certificate authority" in line
    assert str(tls_material.other_ca.cert) in line


def test_tls_wrong_host_name_is_refused_and_explained(
    mosquitto_factory: BrokerFactory, tls_material: TlsMaterial, start_bridge: BridgeStarter
) -> None:
    """A valid certificate for another host name: the log names the host name mismatch."""
    broker = tls_broker(mosquitto_factory, tls_material, "wrong_host")
    bridge = start_bridge(mqtts(broker), "--cafile", str(tls_material.ca.cert))
    line = assert_refused_and_running(bridge, broker, "host name mismatch")
    assert "'127.0.0.1'" in line


def test_tls_expired_certificate_is_refused_and_explained(
    mosquitto_factory: BrokerFactory, tls_material: TlsMaterial, start_bridge: BridgeStarter
) -> None:
    """An expired broker certificate: the log says it has expired."""
    broker = tls_broker(mosquitto_factory, tls_material, "expired")
    bridge = start_bridge(mqtts(broker), "--cafile", str(tls_material.ca.cert))
    assert_refused_and_running(bridge, broker, "certificate has expired")


def test_tls_insecure_connects_and_warns_at_start(
    mosquitto_factory: BrokerFactory, tls_material: TlsMaterial, start_bridge: BridgeStarter
) -> None:
    """--insecure accepts a certificate for the wrong host, with a WARNING before connecting."""
    broker = tls_broker(mosquitto_factory, tls_material, "wrong_host")
    context = client_context(tls_material)
    context.check_hostname = False
    with Subscriber(broker.host, broker.port, "sec/#", tls_context=context) as subscriber:
        bridge = start_bridge(mqtts(broker), "--insecure")
        subscriber.wait_for(online, timeout=15)
        connected = bridge.wait_for_line("connected to MQTT broker")
        assert bridge.stop() == 0
    (warning,) = bridge.lines("verification is OFF")
    assert " WARNING " in warning
    assert bridge.lines().index(warning) < bridge.lines().index(connected)


def test_mutual_tls_accepts_the_client_certificate(
    mosquitto_factory: BrokerFactory, tls_material: TlsMaterial, start_bridge: BridgeStarter
) -> None:
    """A broker requiring client certificates accepts --cert/--key signed by its CA."""
    broker = tls_broker(mosquitto_factory, tls_material, require_certificate=True)
    context = client_context(tls_material, client_cert=True)
    with Subscriber(broker.host, broker.port, "sec/#", tls_context=context) as subscriber:
        bridge = start_bridge(
            mqtts(broker),
            "--cafile",
            str(tls_material.ca.cert),
            "--cert",
            str(tls_material.client.cert),
            "--key",
            str(tls_material.client.key),
        )
        subscriber.wait_for(online, timeout=15)
        assert bridge.stop() == 0


def test_mutual_tls_without_a_client_certificate_is_refused_and_explained(
    mosquitto_factory: BrokerFactory, tls_material: TlsMaterial, start_bridge: BridgeStarter
) -> None:
    """Without --cert/--key a broker requiring one refuses, and the log says to set them."""
    broker = tls_broker(mosquitto_factory, tls_material, require_certificate=True)
    bridge = start_bridge(mqtts(broker), "--cafile", str(tls_material.ca.cert))
    line = assert_refused_and_running(bridge, broker, "client certificate")
    assert "certfile" in line


def test_password_from_a_file_is_accepted_and_never_shown(
    mosquitto_factory: BrokerFactory, tmp_path: Path, start_bridge: BridgeStarter
) -> None:
    """--username with --password-file logs in; the password appears in no log line."""
    broker = mosquitto_factory(users=USERS)
    password_file = tmp_path / "mqtt-password"
    password_file.write_text(SECRET + "\n")
    password_file.chmod(0o600)
    url = f"mqtt://{broker.host}:{broker.port}"
    with Subscriber(
        broker.host, broker.port, "sec/#", username="reader", password=READER
    ) as subscriber:
        bridge = start_bridge(url, "--username", "meter", "--password-file", str(password_file))
        subscriber.wait_for(online, timeout=15)
        assert bridge.stop() == 0
    assert SECRET not in bridge.log


def test_password_from_the_environment_is_accepted_and_never_shown(
    mosquitto_factory: BrokerFactory, start_bridge: BridgeStarter
) -> None:
    """P1MQTT_MQTT_PASSWORD logs in; the password appears in no log line."""
    broker = mosquitto_factory(users=USERS)
    url = f"mqtt://{broker.host}:{broker.port}"
    with Subscriber(
        broker.host, broker.port, "sec/#", username="reader", password=READER
    ) as subscriber:
        bridge = start_bridge(url, P1MQTT_MQTT_USERNAME="meter", P1MQTT_MQTT_PASSWORD=SECRET)
        subscriber.wait_for(online, timeout=15)
        assert bridge.stop() == 0
    assert SECRET not in bridge.log


def test_wrong_password_is_refused_as_not_authorised_without_showing_it(
    mosquitto_factory: BrokerFactory, start_bridge: BridgeStarter
) -> None:
    """A wrong password (given in the broker URL): one 'not authorised' line, no password."""
    broker = mosquitto_factory(users=USERS)
    bridge = start_bridge(f"mqtt://meter:{WRONG}@{broker.host}:{broker.port}")
    line = assert_refused_and_running(bridge, broker, "not authorised")
    assert "'meter'" in line
    assert WRONG not in bridge.log


def run_check_config(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`p1mqtt check-config ...` with the given environment."""
    return subprocess.run(
        [sys.executable, "-m", "p1mqtt", "check-config", *args],
        capture_output=True,
        text=True,
        env=child_env(tmp_path, **env),
        timeout=60,
        check=False,
    )


def test_check_config_and_its_errors_never_show_the_password(tmp_path: Path) -> None:
    """check-config masks the password from the environment, a file and a URL, valid or not."""
    config = tmp_path / "p1mqtt.json"
    mqtt = {"broker": f"mqtt://meter:{SECRET}@broker.lan", "password": SECRET}
    config.write_text(json.dumps({"mqtt": mqtt}))
    config.chmod(0o600)
    valid = [
        run_check_config(tmp_path, P1MQTT_MQTT_USERNAME="meter", P1MQTT_MQTT_PASSWORD=SECRET),
        run_check_config(tmp_path, str(config)),
    ]
    for result in valid:
        assert result.returncode == 0, result.stderr
        assert "***" in result.stdout
    mqtt = {"broker": f"mqtt://meter:{SECRET}@broker.lan:99999", "password": [SECRET]}
    config.write_text(json.dumps({"mqtt": mqtt}))
    invalid = [
        run_check_config(tmp_path, str(config)),
        run_check_config(tmp_path, P1MQTT_MQTT_BROKER=f"mqtt://meter:{SECRET}@broker.lan:0/x"),
        run_check_config(tmp_path, P1MQTT_MQTT_PASSWROD=SECRET),  # a misspelled variable
    ]
    for result in invalid:
        assert result.returncode == 2, result.stdout
        assert "MQTT" in result.stderr.upper()
    for result in valid + invalid:
        assert SECRET not in result.stdout + result.stderr, result.stdout + result.stderr
        assert "Traceback" not in result.stderr


def test_acl_denying_the_prefix_is_reported_with_mqtt5(
    mosquitto_factory: BrokerFactory, tmp_path: Path, start_bridge: BridgeStarter
) -> None:
    """With --mqtt-version 5 a broker ACL that denies the prefix is logged clearly, once a topic."""
    acl = "user meter\ntopic write elsewhere/#\n\nuser reader\ntopic read #\n"
    broker = mosquitto_factory(users=USERS, acl=acl)
    password_file = tmp_path / "mqtt-password"
    password_file.write_text(SECRET)
    bridge = start_bridge(
        f"mqtt://meter@{broker.host}:{broker.port}",
        "--password-file",
        str(password_file),
        "--mqtt-version",
        "5",
    )
    line = bridge.wait_for_line("refused a message published to 'sec/status'")
    assert "Not authorized" in line
    assert "ACL" in line
    assert " ERROR " in line
    bridge.wait_for_line("connected to MQTT broker")
    assert bridge.alive()
    assert bridge.stop() == 0
    refusals = bridge.lines("refused a message published to")
    assert len(refusals) == len({line.split("'")[1] for line in refusals}), bridge.log
    assert SECRET not in bridge.log


def test_there_is_no_password_flag() -> None:
    """There is no --password flag: passwords never go where `ps` shows them."""
    result = subprocess.run(
        [sys.executable, "-m", "p1mqtt", "run", "--password", SECRET],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("P1MQTT_")},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--password-file" in result.stderr
    assert SECRET not in result.stderr
