"""Store and forward end to end: broker outages, with p1mqtt killed -9 in the middle of one.

A pseudo-terminal meter gets a simulated telegram every 0.2 s (the simulated clock runs five
times faster than the wall clock; the meter timestamps 0-0:1.0.0 are one second apart) while
the broker is stopped for more than 20 s; every telegram must then arrive, in order.

How the subscriber sees everything: it holds a persistent session (``clean_session=False``,
QoS 1) on a broker with persistence on, so the broker keeps its subscription across its own
restart and queues for it whatever the bridge delivers before the subscriber has reconnected.
Nothing depends on which of the two reconnects first. Messages the broker itself re-sends to
the subscriber after the restart carry the DUP flag; they are counted apart, since they say
nothing about the bridge.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meter_pty import PtyMeter
from mosquitto import BrokerFactory, MosquittoBroker
from mqtt_helpers import Received, Subscriber, wait_until
from p1mqtt.mqtt import MqttPublisher, MqttSettings
from p1mqtt.outbox import OUTBOX_FILE, Outbox
from test_bridge import RunningBridge, expected_json, make_config, simulated

pytestmark = pytest.mark.integration

PACE = 0.2
"""Seconds between two telegrams written to the meter."""
OUTAGE = 22.0
"""Seconds the broker stays down, at least."""
TIMESTAMP = "0-0:1.0.0"


class PacedWriter:
    """Writes telegrams to the meter one every PACE seconds in a thread; can be paused."""

    def __init__(self, meter: PtyMeter, telegrams: list[bytes]) -> None:
        self._meter = meter
        self._telegrams = telegrams
        self._condition = threading.Condition()
        self._written = 0
        self._running = threading.Event()
        self._running.set()
        self._paused = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-meter-writer")
        self._thread.start()

    @property
    def written(self) -> int:
        """Telegrams written so far."""
        with self._condition:
            return self._written

    def _run(self) -> None:
        for raw in self._telegrams:
            while not self._running.is_set():
                with self._condition:
                    self._paused = True
                    self._condition.notify_all()
                if self._stop.is_set():
                    return
                self._running.wait(0.05)
            with self._condition:
                self._paused = False
            if self._stop.is_set():
                return
            self._meter.write(raw)
            with self._condition:
                self._written += 1
                self._condition.notify_all()
            self._stop.wait(PACE)  # pacing the meter, not synchronisation

    def wait_written(self, count: int, timeout: float = 60.0) -> None:
        """Wait until ``count`` telegrams were written."""
        with self._condition:
            assert self._condition.wait_for(lambda: self._written >= count, timeout), (
                f"only {self._written} of {count} telegrams written"
            )

    def pause(self) -> int:
        """Stop writing between two telegrams; return how many were written."""
        self._running.clear()
        with self._condition:
            assert self._condition.wait_for(lambda: self._paused, 5), "writer did not pause"
            return self._written

    def resume(self) -> None:
        """Write again."""
        self._running.set()

    def close(self) -> None:
        """Stop writing and end the thread."""
        self._stop.set()
        self._running.set()
        self._thread.join(10)


def meter_times(messages: list[Received], topic: str) -> list[str]:
    """The meter timestamps of the telegrams received on ``topic`` (broker re-sends left out)."""
    return [
        json.loads(m.payload)["objects"][TIMESTAMP]["value"]
        for m in messages
        if m.topic == topic and not m.dup
    ]


def times_of(telegrams: list[bytes]) -> list[str]:
    """The meter timestamps of raw telegrams."""
    return [t[TIMESTAMP]["value"] for t in (e["objects"] for e in expected_json(telegrams))]


def report(title: str, figures: dict[str, Any]) -> None:
    """Print the figures of a run (shown with pytest -s, and in the issue note)."""
    print(f"\n{title}: " + ", ".join(f"{name} {value}" for name, value in figures.items()))


def test_broker_outage_delivers_every_telegram_in_order(
    mosquitto_factory: BrokerFactory, meter: PtyMeter
) -> None:
    """Broker down for 22 s while telegrams flow: all arrive once it is back, in order, once."""
    broker = mosquitto_factory(persistence=True)
    prefix = "sf1"
    topic = f"{prefix}/telegram"
    telegrams = simulated(10 + int(OUTAGE / PACE) + 20)
    config = make_config(broker, meter.path, prefix, **{"health.publish_interval": 1.0})
    with Subscriber(
        broker.host,
        broker.port,
        [topic, f"{prefix}/health"],
        client_id=f"{prefix}-sub",
        clean_session=False,
    ) as subscriber:
        running = RunningBridge(config)
        health = running.bridge.health
        writer: PacedWriter | None = None
        try:
            wait_until(lambda: health.port_state == "open" and health.broker_state == "connected")
            writer = PacedWriter(meter, telegrams)
            subscriber.wait_for(lambda ms: len(meter_times(ms, topic)) >= 10)
            broker.stop()
            stopped_at = time.monotonic()
            at_stop = writer.written
            writer.wait_written(at_stop + int(OUTAGE / PACE))
            wait_until(lambda: health.outbox_depth >= int(OUTAGE / PACE) - 10, timeout=5)
            depth_in_outage = health.outbox_depth
            broker.start()
            restarted_at = time.monotonic()
            outage = restarted_at - stopped_at
            during = writer.written
            subscriber.wait_for(lambda ms: len(meter_times(ms, topic)) >= during, timeout=60)
            delivery = time.monotonic() - restarted_at
            writer.wait_written(len(telegrams))
            seen = len(
                subscriber.wait_for(lambda ms: len(meter_times(ms, topic)) >= len(telegrams))
            )
            subscriber.wait_for(
                lambda ms: any(
                    m.topic == f"{prefix}/health" and json.loads(m.payload)["outbox_depth"] == 0
                    for m in ms[seen:]
                )
            )
        finally:
            if writer is not None:
                writer.close()
            assert running.finish() == 0
    received = [
        json.loads(m.payload, parse_float=Decimal)
        for m in subscriber.messages
        if m.topic == topic and not m.dup
    ]
    expected = expected_json(telegrams)
    lost = len([e for e in expected if e not in received])
    report(
        "broker outage",
        {
            "outage": f"{outage:.1f} s",
            "telegrams written": len(telegrams),
            "during the outage": during - at_stop,
            "on disk before the broker returned": depth_in_outage,
            "received": len(received),
            "lost": lost,
            "duplicates": len(received) - len({json.dumps(r, default=str) for r in received}),
            "broker re-sends (DUP)": sum(m.dup for m in subscriber.messages if m.topic == topic),
            "delivery after the broker returned": f"{delivery:.2f} s",
        },
    )
    assert received == expected
    assert health.outbox_dropped == 0


def bridge_process(
    meter: PtyMeter, broker: MosquittoBroker, prefix: str, state: Path, log: Path
) -> subprocess.Popen[bytes]:
    """`python -m p1mqtt run` on the meter and broker, its log appended to ``log``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("P1MQTT_")}
    env.update(
        P1MQTT_HOMEASSISTANT_ENABLED="false",
        P1MQTT_MQTT_RECONNECT_DELAY_MIN="0.1",
        P1MQTT_MQTT_RECONNECT_DELAY_MAX="0.5",
        P1MQTT_SERIAL_REOPEN_DELAY_MIN="0.1",
        P1MQTT_SERIAL_REOPEN_DELAY_MAX="0.5",
    )
    with log.open("ab") as sink:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "p1mqtt",
                "run",
                "--port",
                str(meter.path),
                "--broker",
                f"mqtt://{broker.host}:{broker.port}",
                "--prefix",
                prefix,
                "--data-dir",
                str(state),
            ],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )


def wait_reading(log: Path, starts: int) -> None:
    """Wait until the bridge's ``starts``-th start opened the port (opening flushes it)."""
    wait_until(
        lambda: log.read_text().count("reading P1 data from") >= starts,
        timeout=20,
        what=f"start {starts} reading the port",
    )


def queued_times(state: Path) -> list[str]:
    """The meter times of the telegrams in a stopped bridge's outbox, oldest first."""
    outbox = Outbox(state / OUTBOX_FILE, max_bytes=10**9, max_age=1e9)
    try:
        return [row.meter_time or "" for row in outbox.pending(0, 10_000)]
    finally:
        outbox.close()


def test_kill_9_during_an_outage_loses_nothing_decoded(
    mosquitto_factory: BrokerFactory, meter: PtyMeter, tmp_path: Path
) -> None:
    """p1mqtt killed -9 mid-outage and restarted: every decoded telegram arrives, in order."""
    broker = mosquitto_factory(persistence=True)
    prefix = "sf2"
    topic = f"{prefix}/telegram"
    state = tmp_path / "state"
    log = tmp_path / "bridge.log"
    telegrams = simulated(10 + int(OUTAGE / PACE) + 20)
    written_times = times_of(telegrams)
    processes: list[subprocess.Popen[bytes]] = []
    writer: PacedWriter | None = None
    with Subscriber(
        broker.host, broker.port, topic, client_id=f"{prefix}-sub", clean_session=False
    ) as subscriber:
        try:
            first = bridge_process(meter, broker, prefix, state, log)
            processes.append(first)
            wait_reading(log, 1)
            writer = PacedWriter(meter, telegrams)
            subscriber.wait_for(lambda ms: len(meter_times(ms, topic)) >= 10, timeout=20)
            broker.stop()
            stopped_at = time.monotonic()
            at_stop = writer.written
            writer.wait_written(at_stop + int(OUTAGE / PACE) // 2)

            at_kill = writer.pause()
            first.send_signal(signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
            killed_at = time.monotonic()
            received_before = meter_times(subscriber.messages, topic)
            stored = queued_times(state)

            second = bridge_process(meter, broker, prefix, state, log)
            processes.append(second)
            wait_reading(log, 2)
            restart = time.monotonic() - killed_at
            writer.resume()
            writer.wait_written(at_kill + int(OUTAGE / PACE) // 2 + 5)
            broker.start()
            restarted_at = time.monotonic()
            outage = restarted_at - stopped_at
            last_before_return = written_times[writer.written - 1]
            subscriber.wait_for(lambda ms: last_before_return in meter_times(ms, topic), timeout=60)
            delivery = time.monotonic() - restarted_at
            writer.wait_written(len(telegrams))
            subscriber.wait_for(
                lambda ms: meter_times(ms, topic)[-1:] == written_times[-1:], timeout=30
            )
            second.send_signal(signal.SIGTERM)
            assert second.wait(10) == 0, log.read_text()
        finally:
            if writer is not None:
                writer.close()
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()

    received = meter_times(subscriber.messages, topic)
    arrived = set(received)
    # Everything written before the kill arrived, except perhaps the last telegram or two: on
    # their way through the pseudo-terminal when the process died, they were never decoded.
    before_kill = written_times[:at_kill]
    decoded_before_kill = [t for t in before_kill if t in arrived]
    in_pipe = before_kill[len(decoded_before_kill) :]
    assert decoded_before_kill == before_kill[: len(decoded_before_kill)], "a gap"
    assert len(in_pipe) <= 2, in_pipe
    assert len(stored) >= at_kill - at_stop - 2  # the outage's telegrams were on disk
    must_arrive = set(stored) | set(received_before) | set(written_times[at_kill:])
    lost = sorted(must_arrive - arrived)
    text = log.read_text()
    report(
        "kill -9 during a broker outage",
        {
            "outage": f"{outage:.1f} s",
            "killed after": f"{killed_at - stopped_at:.1f} s",
            "restart": f"{restart:.2f} s",
            "telegrams written": len(telegrams),
            "on disk at the kill": len(stored),
            "in the pipe at the kill (never decoded)": len(in_pipe),
            "received": len(received),
            "lost": len(lost),
            "duplicates": len(received) - len(set(received)),
            "delivery after the broker returned": f"{delivery:.2f} s",
        },
    )
    assert lost == []
    assert received == sorted(set(received)), "out of order or twice"
    assert set(received) <= set(written_times)
    assert "from an earlier run" in text, text


def test_clean_stop_during_an_outage_keeps_telegrams_for_the_next_start(
    mosquitto_factory: BrokerFactory, meter: PtyMeter, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped while the broker is away: quick; the telegrams stay on disk for the next run."""
    caplog.set_level(logging.INFO, logger="p1mqtt.forwarder")
    broker = mosquitto_factory()
    prefix = "sf5"
    topic = f"{prefix}/telegram"
    telegrams = simulated(8)
    config = make_config(broker, meter.path, prefix)
    running = RunningBridge(config)
    health = running.bridge.health
    try:
        wait_until(lambda: health.port_state == "open" and health.broker_state == "connected")
        broker.stop()
        wait_until(lambda: health.broker_state.startswith("disconnected"))
        meter.write(b"".join(telegrams[:5]))
        wait_until(lambda: health.telegrams_decoded == 5)
    finally:
        stopping = time.monotonic()
        assert running.finish() == 0
        stop_time = time.monotonic() - stopping
    assert stop_time < 5
    assert "5 telegrams stay in the store-and-forward queue" in caplog.text
    broker.start()
    with Subscriber(broker.host, broker.port, topic) as subscriber:
        again = RunningBridge(config)
        try:
            wait_until(lambda: again.bridge.health.port_state == "open")
            meter.write(b"".join(telegrams[5:]))
            subscriber.wait_for(8)
        finally:
            assert again.finish() == 0
    assert meter_times(subscriber.messages, topic) == times_of(telegrams)


@pytest.mark.parametrize("problem", ["no data directory", "queue in use"])
def test_without_a_usable_queue_telegrams_are_published_directly(
    mosquitto: MosquittoBroker,
    meter: PtyMeter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    problem: str,
) -> None:
    """No data directory, or its queue held by another process: a warning, direct publishing."""
    prefix = "sf6"
    topic = f"{prefix}/telegram"
    state = tmp_path / "state"
    holder = None
    if problem == "no data directory":
        state.write_text("a file where the directory should be")
        warning = "store-and-forward queue are off"
    else:
        state.mkdir()
        holder = Outbox(state / OUTBOX_FILE, max_bytes=10**9, max_age=1e9)
        warning = "in use by another process"
    telegrams = simulated(3)
    try:
        with Subscriber(mosquitto.host, mosquitto.port, topic) as subscriber:
            running = RunningBridge(
                make_config(mosquitto, meter.path, prefix, **{"storage.data_dir": str(state)})
            )
            try:
                wait_until(lambda: running.bridge.health.port_state == "open")
                meter.write(b"".join(telegrams))
                subscriber.wait_for(3)
            finally:
                assert running.finish() == 0
    finally:
        if holder is not None:
            holder.close()
    assert meter_times(subscriber.messages, topic) == times_of(telegrams)
    assert any(warning in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


# -- the publisher's part ---------------------------------------------------------------------


def make_publisher(broker: MosquittoBroker, **options: Any) -> MqttPublisher:
    """A publisher for ``broker`` with fast reconnects (not started)."""
    return MqttPublisher(
        MqttSettings(
            host=broker.host,
            port=broker.port,
            client_id=f"sf-pub-{os.getpid()}-{time.monotonic_ns()}",
            reconnect_delay_min=0.05,
            reconnect_delay_max=0.2,
            **options,
        )
    )


def test_retained_values_queued_while_away_keep_only_the_newest(
    mosquitto: MosquittoBroker,
) -> None:
    """While disconnected a retained topic keeps only its newest value; others keep them all."""
    publisher = make_publisher(mosquitto)
    for i in range(100):
        publisher.publish("sf3/power", str(i), retain=True)
        publisher.publish("sf3/voltage", str(230 + i / 100), retain=True)
    for i in range(5):
        publisher.publish("sf3/event", f"e{i}")
    assert publisher.queued == 2 + 5
    assert publisher.dropped == 0
    with Subscriber(mosquitto.host, mosquitto.port, "sf3/#") as subscriber:
        publisher.start()
        try:
            assert publisher.flush(10)
            received = subscriber.wait_for(7)
        finally:
            publisher.stop(2)
    assert [(m.topic, m.text) for m in received] == [
        ("sf3/power", "99"),
        ("sf3/voltage", "230.99"),
        *[("sf3/event", f"e{i}") for i in range(5)],
    ]


def test_on_delivered_messages_are_never_dropped_and_acknowledged_once(
    mosquitto: MosquittoBroker,
) -> None:
    """A full queue drops other messages, never those with on_delivered; each is acked once."""
    publisher = make_publisher(mosquitto, queue_size=5)
    delivered: list[int] = []
    done = threading.Event()

    def acknowledged(n: int) -> Callable[[], None]:
        def callback() -> None:
            delivered.append(n)
            if len(delivered) == 3:
                done.set()

        return callback

    for n in range(3):
        publisher.publish("sf4/kept", str(n), on_delivered=acknowledged(n))
    for n in range(10):
        publisher.publish("sf4/other", str(n))
    assert publisher.queued == 5
    assert publisher.dropped == 8
    with Subscriber(mosquitto.host, mosquitto.port, "sf4/#") as subscriber:
        publisher.start()
        try:
            assert done.wait(10)
            assert publisher.flush(10)
            received = subscriber.wait_for(5)
        finally:
            publisher.stop(2)
    assert delivered == [0, 1, 2]
    assert [(m.topic, m.text) for m in received] == [
        ("sf4/kept", "0"),
        ("sf4/kept", "1"),
        ("sf4/kept", "2"),
        ("sf4/other", "8"),
        ("sf4/other", "9"),
    ]
