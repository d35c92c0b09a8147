"""The bridge end to end: a pseudo-terminal meter -> p1mqtt -> a real Mosquitto -> a subscriber."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meter_pty import PtyMeter
from mosquitto import MosquittoBroker
from mqtt_helpers import Subscriber, wait_until
from p1mqtt.config import Config, load_config
from p1mqtt.protocol import Decoder, TelegramDecoded, TelegramJsonEncoder
from p1mqtt.service import Bridge
from p1mqtt.simulator import SimulatedMeter
from p1mqtt.statusfile import STATUS_FILE_NAME, StatusFile

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def simulated(count: int, seed: int = 1) -> list[bytes]:
    """``count`` consecutive simulated T211 telegrams, one second apart."""
    meter = SimulatedMeter("t211", start=START, seed=seed)
    return [meter.telegram(START + timedelta(seconds=i)) for i in range(count)]


def expected_json(telegrams: list[bytes]) -> list[dict[str, Any]]:
    """What `p1mqtt decode` makes of the telegrams, parsed."""
    decoder = Decoder()
    encoder = TelegramJsonEncoder()
    out = []
    for raw in telegrams:
        (event,) = decoder.feed(raw)
        assert isinstance(event, TelegramDecoded)
        out.append(json.loads(encoder.encode(event.telegram), parse_float=Decimal))
    return out


def make_config(broker: MosquittoBroker, port: Path, prefix: str, **sections: object) -> Config:
    """A configuration for the test broker and meter, with per-test overrides."""
    overrides: dict[str, object] = {
        "serial.port": str(port),
        "mqtt.broker": f"mqtt://{broker.host}:{broker.port}",
        "mqtt.reconnect_delay_min": 0.1,
        "mqtt.reconnect_delay_max": 0.5,
        "serial.reopen_delay_min": 0.1,
        "serial.reopen_delay_max": 0.5,
        "topics.prefix": prefix,
        "homeassistant.enabled": False,
        "storage.data_dir": str(port.parent / "state"),
    }
    overrides.update(sections)
    return load_config(None, env={}, overrides=overrides)


class RunningBridge:
    """A bridge running in a thread of the test process."""

    def __init__(self, config: Config) -> None:
        self.bridge = Bridge(config)
        self.stop = threading.Event()
        self.status: int | None = None
        self._thread = threading.Thread(target=self._run, name="test-bridge")
        self._thread.start()

    def _run(self) -> None:
        self.status = self.bridge.run(self.stop)

    def finish(self, timeout: float = 10.0) -> int | None:
        """Stop the bridge and wait for it; return its exit status."""
        self.stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "bridge did not stop"
        return self.status


def plain(telegram_json: dict[str, Any], obis: str) -> str:
    """The plain payload expected for ``obis``: the meter's digits, exactly."""
    value = telegram_json["objects"][obis]["value"]
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def topic_payloads(subscriber: Subscriber, topic: str) -> list[str]:
    """Payloads received on ``topic``, in order."""
    return [m.payload.decode() for m in subscriber.messages if m.topic == topic]


def test_every_telegram_arrives_in_order_with_equal_values(
    mosquitto: MosquittoBroker, meter: PtyMeter
) -> None:
    """Every telegram written arrives on <prefix>/telegram and the plain topics, in order."""
    telegrams = simulated(25)
    expected = expected_json(telegrams)
    with Subscriber(mosquitto.host, mosquitto.port, "t1/#") as subscriber:
        # Every reading of every telegram (throttling off), to compare them one by one.
        config = make_config(
            mosquitto, meter.path, "t1", **{"filters.on_change": False, "filters.min_interval": 0}
        )
        running = RunningBridge(config)
        subscriber.wait_for(lambda ms: any(m.topic == "t1/status" for m in ms))
        wait_until(lambda: running.bridge.health.port_state == "open")
        meter.write(b"".join(telegrams))
        subscriber.wait_for(
            lambda ms: sum(m.topic == "t1/telegram" for m in ms) == len(telegrams), timeout=20
        )
        assert running.finish() == 0
        subscriber.wait_for(lambda ms: ms[-1].topic == "t1/status")
    received = [
        json.loads(m.payload, parse_float=Decimal)
        for m in subscriber.messages
        if m.topic == "t1/telegram"
    ]
    assert received == expected
    for topic, obis in [
        ("t1/energy_import_tariff_1", "1-0:1.8.1"),
        ("t1/power_import", "1-0:1.7.0"),
        ("t1/voltage_l1", "1-0:32.7.0"),
        ("t1/current_l3", "1-0:71.7.0"),
        ("t1/tariff", "0-0:96.14.0"),
        ("t1/gas_volume", "0-1:24.2.3"),
        ("t1/water_volume", "0-2:24.2.1"),
    ]:
        assert topic_payloads(subscriber, topic) == [plain(e, obis) for e in expected], topic
    statuses = topic_payloads(subscriber, "t1/status")
    assert statuses[0] == "online"
    assert statuses[-1] == "offline"


def test_status_and_health_are_retained(mosquitto: MosquittoBroker, meter: PtyMeter) -> None:
    """A late subscriber finds status online and the health figures, both retained."""
    running = RunningBridge(make_config(mosquitto, meter.path, "t2"))
    try:
        with Subscriber(mosquitto.host, mosquitto.port, "t2/health") as early:
            early.wait_for(lambda ms: any(json.loads(m.payload)["port"] == "open" for m in ms))
        meter.write(b"".join(simulated(3)))
        wait_until(lambda: running.bridge.health.telegrams_decoded == 3)
        with Subscriber(mosquitto.host, mosquitto.port, "t2/#") as late:
            late.wait_for(
                lambda ms: (
                    {"t2/status", "t2/health", "t2/power_import"}
                    <= {m.topic for m in ms if m.retain}
                )
            )
            assert topic_payloads(late, "t2/status") == ["online"]
            health = json.loads(topic_payloads(late, "t2/health")[-1])
            assert health["port"] == "open"
            assert health["broker"] == "connected"
    finally:
        assert running.finish() == 0
    with Subscriber(mosquitto.host, mosquitto.port, "t2/status") as after:
        after.wait_for(1)
        assert topic_payloads(after, "t2/status") == ["offline"]


def test_the_status_file_shows_a_lost_broker_at_once(
    mosquitto: MosquittoBroker, meter: PtyMeter
) -> None:
    """`p1mqtt health` reads the status file: a broker lost shows there within seconds, not
    at the next routine write (every 15 s)."""
    running = RunningBridge(make_config(mosquitto, meter.path, "t2s"))
    status = StatusFile(meter.path.parent / "state" / STATUS_FILE_NAME)
    try:
        wait_until(lambda: running.bridge.health.port_state == "open")
        meter.write(b"".join(simulated(2)))
        # The first telegram is written at once too (no routine write within 5 s of the start).
        wait_until(
            lambda: (found := status.read()) is not None and found.last_telegram_at is not None,
            timeout=5,
        )
        written = status.read()
        assert written is not None
        assert (written.port_state, written.broker_connected) == ("open", True)
        mosquitto.stop()
        lost_at = time.monotonic()
        wait_until(
            lambda: (found := status.read()) is not None and not found.broker_connected,
            timeout=5,
        )
        assert time.monotonic() - lost_at < 5
    finally:
        assert running.finish() == 0


def test_port_unplugged_and_replugged_behind_the_same_path(
    mosquitto: MosquittoBroker, meter: PtyMeter
) -> None:
    """The port vanishing and reappearing behind the same symlink is ridden out."""
    telegrams = simulated(6)
    with Subscriber(mosquitto.host, mosquitto.port, "t3/telegram") as subscriber:
        running = RunningBridge(make_config(mosquitto, meter.path, "t3"))
        wait_until(lambda: running.bridge.health.port_state == "open")
        meter.write(b"".join(telegrams[:3]))
        subscriber.wait_for(3)
        meter.unplug()
        wait_until(lambda: "not found" in running.bridge.health.port_state)
        meter.replug()
        wait_until(lambda: running.bridge.health.port_state == "open")
        replugged_at = time.monotonic()
        meter.write(b"".join(telegrams[3:]))
        subscriber.wait_for(6, timeout=5)
        assert time.monotonic() - replugged_at < 5
        assert running.bridge.health.port_reopens >= 1
        assert running.finish() == 0
    received = [json.loads(m.payload, parse_float=Decimal) for m in subscriber.messages]
    assert received == expected_json(telegrams)


def test_silent_meter_is_reported_and_the_port_reopened(
    mosquitto: MosquittoBroker, meter: PtyMeter, caplog: pytest.LogCaptureFixture
) -> None:
    """No valid telegram for stale_after seconds: a log line, health 'stale', a reopen."""
    config = make_config(
        mosquitto, meter.path, "t4", **{"health.stale_after": 0.5, "health.publish_interval": 60}
    )
    with Subscriber(mosquitto.host, mosquitto.port, "t4/health") as subscriber:
        running = RunningBridge(config)
        try:
            subscriber.wait_for(
                lambda ms: any(json.loads(m.payload)["state"] == "stale" for m in ms)
            )
            wait_until(lambda: running.bridge.health.port_reopens >= 1)
        finally:
            assert running.finish() == 0
    assert any(
        "no valid telegram" in r.getMessage() and "no data at all" in r.getMessage()
        for r in caplog.records
    )


def test_garbage_is_counted_and_diagnosed(
    mosquitto: MosquittoBroker, meter: PtyMeter, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes without telegrams (wrong speed) are counted, and the log suggests the cause."""
    config = make_config(mosquitto, meter.path, "t5", **{"health.stale_after": 0.5})
    running = RunningBridge(config)
    try:
        wait_until(lambda: running.bridge.health.port_state == "open")
        meter.write(bytes(range(256)) * 4)
        wait_until(lambda: running.bridge.health.bytes_discarded > 0)
        wait_until(lambda: running.bridge.health.stale)
    finally:
        assert running.finish() == 0
    assert any("wrong speed" in r.getMessage() for r in caplog.records)


def test_corrupt_telegram_counted_and_skipped(mosquitto: MosquittoBroker, meter: PtyMeter) -> None:
    """A telegram with a bad CRC is counted, skipped, and the next one is published."""
    good = simulated(2)
    corrupt = good[0].replace(b"1-0:1.8.1(0", b"1-0:1.8.1(9")
    with Subscriber(mosquitto.host, mosquitto.port, "t6/telegram") as subscriber:
        running = RunningBridge(make_config(mosquitto, meter.path, "t6"))
        wait_until(lambda: running.bridge.health.port_state == "open")
        meter.write(corrupt + good[1])
        subscriber.wait_for(1)
        wait_until(lambda: running.bridge.health.crc_errors == 1)
        assert running.finish() == 0
    received = [json.loads(m.payload, parse_float=Decimal) for m in subscriber.messages]
    assert received == expected_json(good[1:])


def test_broker_restart_is_ridden_out(mosquitto: MosquittoBroker, meter: PtyMeter) -> None:
    """After the broker restarts, status is online again and readings flow."""
    running = RunningBridge(make_config(mosquitto, meter.path, "t7"))
    try:
        wait_until(lambda: running.bridge.health.broker_state == "connected")
        mosquitto.restart()
        wait_until(lambda: running.bridge.health.mqtt_reconnects >= 1, timeout=15)
        with Subscriber(mosquitto.host, mosquitto.port, "t7/#") as subscriber:
            meter.write(simulated(1)[0])
            subscriber.wait_for(lambda ms: any(m.topic == "t7/telegram" for m in ms))
            subscriber.wait_for(lambda ms: any(m.topic == "t7/status" for m in ms))
            assert topic_payloads(subscriber, "t7/status")[-1] == "online"
    finally:
        assert running.finish() == 0


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `python -m p1mqtt ...` as a separate process."""
    return subprocess.Popen(
        [sys.executable, "-m", "p1mqtt", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_sigterm_publishes_offline_and_exits_zero(
    mosquitto: MosquittoBroker, meter: PtyMeter
) -> None:
    """`p1mqtt run` stops on SIGTERM within 5 s with exit status 0 and status offline."""
    with Subscriber(mosquitto.host, mosquitto.port, "t8/#") as subscriber:
        process = run_cli(
            "run",
            "--port",
            str(meter.path),
            "--broker",
            f"mqtt://{mosquitto.host}:{mosquitto.port}",
            "--prefix",
            "t8",
            "--data-dir",
            str(meter.path.parent / "state"),
            env={"P1MQTT_HOMEASSISTANT_ENABLED": "false"},
        )
        try:
            subscriber.wait_for(lambda ms: any(m.topic == "t8/status" for m in ms), timeout=15)
            with meter.streaming(simulated(1)):
                subscriber.wait_for(lambda ms: any(m.topic == "t8/telegram" for m in ms), 15)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=5)
            assert process.returncode == 0, stderr
            assert time.monotonic() - signalled < 5
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        subscriber.wait_for(lambda ms: ms[-1].topic == "t8/status")
    assert topic_payloads(subscriber, "t8/status")[-1] == "offline"


def test_bad_config_is_refused_with_file_and_field(tmp_path: Path) -> None:
    """`p1mqtt run` with a bad configuration exits 2 naming the file and the field."""
    config = tmp_path / "p1mqtt.json"
    config.write_text('{"mqtt": {"qos": 7}}', encoding="utf-8")
    process = run_cli("run", "--config", str(config))
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert str(config) in stderr
    assert "mqtt.qos" in stderr
    assert "Traceback" not in stderr


def test_dump_shows_readings(meter: PtyMeter) -> None:
    """`p1mqtt dump --count 2` prints the decoded readings of two telegrams and exits 0."""
    process = run_cli(
        "dump",
        "--port",
        str(meter.path),
        "--count",
        "2",
        env={"STATE_DIRECTORY": str(meter.path.parent)},
    )
    try:
        meter.wait_opened_by(process.pid)
        with meter.streaming(simulated(4), interval=0.2):
            stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout.count("telegram ") == 2
    assert "energy_import_tariff_1" in stdout
    assert "Energy imported, tariff 1 (day)" in stdout


def test_replugged_cable_is_noticed_before_the_back_off_ends(
    mosquitto: MosquittoBroker, meter: PtyMeter
) -> None:
    """With the back-off grown long, a cable replugged behind its path is read within 2 s."""
    config = make_config(
        mosquitto,
        meter.path,
        "t9",
        **{"serial.reopen_delay_min": 1.0, "serial.reopen_delay_max": 30.0},
    )
    with Subscriber(mosquitto.host, mosquitto.port, "t9/telegram") as subscriber:
        running = RunningBridge(config)
        try:
            wait_until(lambda: running.bridge.health.port_state == "open")
            meter.unplug()
            # Failed attempts after about 0, 1, 3 and 7 s; the next would be 8 s later.
            threading.Event().wait(7.5)  # the outage itself, not synchronisation
            meter.replug()
            replugged_at = time.monotonic()
            wait_until(lambda: running.bridge.health.port_state == "open", timeout=5)
            meter.write(simulated(1)[0])
            subscriber.wait_for(1, timeout=5)
            assert time.monotonic() - replugged_at < 2.0
        finally:
            assert running.finish() == 0
