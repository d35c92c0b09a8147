"""Meter-side faults through the real bridge: `python -m p1mqtt run` as users run it.

A pseudo-terminal (or a TCP server playing a network dongle) stands in for the meter, a real
Mosquitto carries ``<prefix>/health`` and the telegrams, and the bridge's own stderr (at DEBUG)
is what is checked: the process keeps running, says what is wrong in one line, recovers by
itself, does not spin and does not flood its log.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import serial

from meter_pty import PtyMeter
from mosquitto import MosquittoBroker, free_port
from mqtt_helpers import Received, Subscriber, wait_until
from p1mqtt.simulator import SimulatedMeter
from p1mqtt.simulator_output import TcpMeter
from p1mqtt.sources import describe_port_error

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RECOVERY_LIMIT = 5.0
"""Seconds from the meter coming back to its telegrams flowing again (the issue's target)."""
DIALOUT_HINT = "add the user to the dialout group"


def simulated(count: int, first: int = 0) -> list[bytes]:
    """Simulated T211 telegrams for seconds ``first`` .. ``first + count - 1`` after START."""
    meter = SimulatedMeter("t211", start=START, seed=7)
    return [meter.telegram(START + timedelta(seconds=first + i)) for i in range(count)]


def child_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a bridge process: no inherited P1MQTT_*, short retry delays."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("P1MQTT_")}
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),  # keep the totals file out of $HOME
        P1MQTT_HOMEASSISTANT_ENABLED="false",
        P1MQTT_SERIAL_REOPEN_DELAY_MIN="0.1",
        P1MQTT_SERIAL_REOPEN_DELAY_MAX="0.5",
        P1MQTT_MQTT_RECONNECT_DELAY_MIN="0.1",
        P1MQTT_MQTT_RECONNECT_DELAY_MAX="0.5",
        P1MQTT_HEALTH_STALE_AFTER="60",
        P1MQTT_HEALTH_PUBLISH_INTERVAL="60",
    )
    env.update(settings)
    return env


class BridgeProcess:
    """`python -m p1mqtt run --log-level DEBUG ...` with its log collected line by line."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "p1mqtt", "run", "--log-level", "DEBUG", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            preexec_fn=preexec_fn,  # noqa: PLW1509 - only drops capabilities, no locks
        )
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._collector = threading.Thread(target=self._collect, name="bridge-log")
        self._collector.start()

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def lines(self, text: str = "", levels: tuple[str, ...] = ()) -> list[str]:
        """Log lines so far containing ``text`` (and at one of ``levels`` when given)."""
        with self._changed:
            return [
                line
                for line in self._lines
                if text in line and (not levels or _level(line) in levels)
            ]

    @property
    def log(self) -> str:
        """Everything logged so far."""
        return "\n".join(self.lines())

    def wait_for_line(self, text: str, timeout: float = 10.0) -> str:
        """Wait until a line containing ``text`` is logged; return it."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: (
                    any(text in line for line in self._lines) or self.process.poll() is not None
                ),
                timeout,
            )
            matching = [line for line in self._lines if text in line]
        if not found or not matching:
            raise AssertionError(f"no log line with {text!r} after {timeout} s; log:\n{self.log}")
        return matching[0]

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time the process used so far."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait; return the exit status (the process is killed if it hangs)."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
            raise AssertionError(f"p1mqtt did not stop on SIGTERM; log:\n{self.log}") from None
        finally:
            self._collector.join(timeout)
            if self.process.stdout is not None:
                self.process.stdout.close()
        return status


def _level(line: str) -> str:
    parts = line.split(" ", 3)
    return parts[2] if len(parts) > 2 else ""


PROBLEMS = ("WARNING", "ERROR", "CRITICAL")


@pytest.fixture
def start_bridge(tmp_path: Path) -> Iterator[Callable[..., BridgeProcess]]:
    """Start bridge processes; any still running at the end are killed."""
    started: list[BridgeProcess] = []

    def start(
        port: str,
        broker: MosquittoBroker,
        prefix: str,
        *,
        preexec_fn: Callable[[], None] | None = None,
        **settings: str,
    ) -> BridgeProcess:
        args = ["--port", port, "--broker", f"mqtt://{broker.host}:{broker.port}"]
        bridge = BridgeProcess(
            [*args, "--prefix", prefix], child_env(tmp_path, **settings), preexec_fn
        )
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        if bridge.alive():
            bridge.process.kill()
            bridge.stop()


@pytest.fixture
def meter_path(tmp_path: Path) -> Path:
    """Where the meter's by-id style symlink lives (or will appear)."""
    return tmp_path / "usb-P1_cable-if00-port0"


def health_reports(subscriber: Subscriber, prefix: str) -> list[dict[str, Any]]:
    """Every ``<prefix>/health`` payload received so far, parsed."""
    return [json.loads(m.payload) for m in subscriber.messages if m.topic == f"{prefix}/health"]


def has_health(prefix: str, check: Callable[[dict[str, Any]], bool]) -> Callable[..., bool]:
    """A Subscriber.wait_for predicate: a health report for which ``check`` holds arrived."""

    def predicate(messages: list[Received]) -> bool:
        return any(check(json.loads(m.payload)) for m in messages if m.topic == f"{prefix}/health")

    return predicate


def telegram_count(subscriber: Subscriber, prefix: str) -> int:
    """How many ``<prefix>/telegram`` messages arrived."""
    return sum(m.topic == f"{prefix}/telegram" for m in subscriber.messages)


def test_missing_port_at_start_is_logged_once_and_recovers_when_it_appears(
    mosquitto: MosquittoBroker, meter_path: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    """No device at start: the bridge runs on, says 'not found' once, reads it once it appears."""
    prefix = "sf1"
    with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/#") as subscriber:
        bridge = start_bridge(str(meter_path), mosquitto, prefix)
        subscriber.wait_for(
            lambda ms: (
                sum("not found" in h["port"] for h in health_reports(subscriber, prefix)) >= 4
            ),
            timeout=15,
        )
        assert bridge.alive()
        assert len(bridge.lines("not found")) == 1, bridge.log
        assert DIALOUT_HINT not in bridge.log
        meter = PtyMeter(meter_path)
        try:
            appeared = time.monotonic()
            subscriber.wait_for(has_health(prefix, lambda h: h["port"] == "open"), timeout=5)
            meter.write(simulated(1)[0])
            subscriber.wait_for(lambda ms: telegram_count(subscriber, prefix) >= 1, timeout=5)
            recovery = time.monotonic() - appeared
        finally:
            meter.close()
        print(f"missing port: telegrams flow {recovery:.2f} s after the device appeared")
        assert recovery < RECOVERY_LIMIT
        bridge.wait_for_line("is open again")
        assert bridge.stop() == 0
    assert len(bridge.lines("not found")) == 1, bridge.log


def test_unplug_and_replug_as_a_new_device_resumes_without_restart(
    mosquitto: MosquittoBroker, meter_path: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    """A new /dev/pts behind the same by-id link is picked up within 5 s by the same process."""
    prefix = "sf2"
    telegrams = simulated(6)
    meter = PtyMeter(meter_path)
    decoy: tuple[int, int] | None = None
    try:
        with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/#") as subscriber:
            bridge = start_bridge(str(meter_path), mosquitto, prefix)
            meter.wait_opened_by(bridge.pid)
            subscriber.wait_for(has_health(prefix, lambda h: h["port"] == "open"), timeout=15)
            meter.write(b"".join(telegrams[:3]))
            subscriber.wait_for(lambda ms: telegram_count(subscriber, prefix) >= 3)
            old_device = meter.device
            meter.unplug()
            bridge.wait_for_line("disconnected")
            # A failed reopen means the old terminal is closed everywhere: take its number, so
            # that the replugged meter gets another one, as a new USB device would.
            subscriber.wait_for(has_health(prefix, lambda h: "not found" in h["port"]))
            decoy = os.openpty()
            meter.replug()
            replugged = time.monotonic()
            assert meter.device != old_device
            subscriber.wait_for(
                has_health(prefix, lambda h: h["port"] == "open" and h["port_reopens"] >= 1),
                timeout=RECOVERY_LIMIT,
            )
            meter.write(b"".join(telegrams[3:]))
            subscriber.wait_for(lambda ms: telegram_count(subscriber, prefix) >= 4)
            recovery = time.monotonic() - replugged
            subscriber.wait_for(lambda ms: telegram_count(subscriber, prefix) >= 6)
            print(
                f"replug: {old_device} -> {meter.device}; first telegram published "
                f"{recovery:.2f} s after the replug"
            )
            assert recovery < RECOVERY_LIMIT
            assert bridge.alive()
            assert meter.opened_by(bridge.pid)
            assert bridge.stop() == 0
    finally:
        meter.close()
        if decoy is not None:
            for fd in decoy:
                os.close(fd)
    received = [json.loads(m.payload) for m in subscriber.messages if m.topic.endswith("/telegram")]
    stamps = [t["objects"]["0-0:1.0.0"]["value"] for t in received]
    assert len(set(stamps)) == 6
    problems = bridge.lines(levels=PROBLEMS)
    assert len(problems) <= 3, problems  # disconnected, then not found: once each


def _drop_file_capabilities() -> None:
    """Run as a root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: file modes apply to it."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_capabilities() -> bool:
    try:
        subprocess.run(
            [sys.executable, "-c", "pass"],
            preexec_fn=_drop_file_capabilities,
            check=True,
            timeout=30,
        )
    except (subprocess.SubprocessError, OSError):
        return False
    return True


def test_permission_denied_message_names_the_dialout_group() -> None:
    """EACCES, as a plain OSError or as pyserial's SerialException, says what to do."""
    for error in (
        PermissionError(errno.EACCES, "Permission denied"),
        serial.SerialException(
            errno.EACCES, "could not open port /dev/ttyUSB0: [Errno 13] Permission denied"
        ),
    ):
        message = describe_port_error("/dev/ttyUSB0", error)
        assert "permission denied" in message
        assert DIALOUT_HINT in message


def test_permission_denied_is_explained_and_recovers_once_allowed(
    mosquitto: MosquittoBroker, meter_path: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    """A device the user may not open: one 'add the user to the dialout group' line, recovery."""
    if os.geteuid() == 0 and not _can_drop_capabilities():
        pytest.skip(
            "running as root and cannot drop CAP_DAC_OVERRIDE (prctl refused): root opens "
            "any device, so 'permission denied' cannot happen here"
        )
    prefix = "sf3"
    meter = PtyMeter(meter_path)
    try:
        os.chmod(meter.device, 0)
        with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/#") as subscriber:
            bridge = start_bridge(
                str(meter_path),
                mosquitto,
                prefix,
                preexec_fn=_drop_file_capabilities if os.geteuid() == 0 else None,
            )
            line = bridge.wait_for_line(DIALOUT_HINT)
            assert "permission denied" in line
            assert _level(line) == "ERROR"
            subscriber.wait_for(
                lambda ms: (
                    sum(
                        "permission denied" in h["port"] for h in health_reports(subscriber, prefix)
                    )
                    >= 3
                ),
                timeout=15,
            )
            assert bridge.alive()
            os.chmod(meter.device, 0o660)
            subscriber.wait_for(has_health(prefix, lambda h: h["port"] == "open"), timeout=5)
            meter.write(simulated(1)[0])
            subscriber.wait_for(lambda ms: telegram_count(subscriber, prefix) >= 1)
            assert bridge.stop() == 0
    finally:
        meter.close()
    assert len(bridge.lines(DIALOUT_HINT)) == 1, bridge.log


class PacedWriter:
    """Writes bytes into the meter at about the line speed of 115200 baud, in a thread."""

    def __init__(self, meter: PtyMeter, make_chunk: Callable[[], bytes], rate: int = 11_520):
        self._meter = meter
        self._make_chunk = make_chunk
        self._rate = rate
        self._stop = threading.Event()
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="paced-writer")
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            chunk = self._make_chunk()
            self._meter.write(chunk)
            self.written += len(chunk)
            # Throttle to line speed: wait until the bytes written so far would have been sent.
            self._stop.wait(max(0.0, started + self.written / self._rate - time.monotonic()))

    def stop(self) -> None:
        """Stop writing."""
        self._stop.set()
        self._thread.join(10)


def test_wrong_speed_garbage_is_counted_diagnosed_once_and_cheap(
    mosquitto: MosquittoBroker, meter_path: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    """Line-speed garbage: bytes counted, 'wrong speed' logged once, low CPU, no exit."""
    prefix = "sf4"
    rng = random.Random(4)
    meter = PtyMeter(meter_path)
    try:
        with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/#") as subscriber:
            bridge = start_bridge(str(meter_path), mosquitto, prefix, P1MQTT_HEALTH_STALE_AFTER="1")
            meter.wait_opened_by(bridge.pid)
            subscriber.wait_for(has_health(prefix, lambda h: h["port"] == "open"), timeout=15)
            cpu_before, wall_before = bridge.cpu_seconds(), time.monotonic()
            writer = PacedWriter(meter, lambda: rng.randbytes(1152))
            try:
                bridge.wait_for_line("wrong speed")
                # Several stale periods (each reopens the port) to see that nothing repeats.
                subscriber.wait_for(has_health(prefix, lambda h: h["port_reopens"] >= 4), 15)
            finally:
                writer.stop()
            cpu = bridge.cpu_seconds() - cpu_before
            wall = time.monotonic() - wall_before
            print(
                f"garbage: {writer.written} bytes in {wall:.1f} s; the bridge used "
                f"{cpu:.2f} s CPU ({100 * cpu / wall:.0f}% of wall time)"
            )
            assert cpu < 0.3 * wall
            latest = health_reports(subscriber, prefix)[-1]
            assert latest["bytes_discarded"] + latest["frames_rejected"] > 0
            assert latest["telegrams_decoded"] == 0
            assert bridge.alive()
            meter.write(simulated(1)[0])
            subscriber.wait_for(lambda ms: telegram_count(subscriber, prefix) >= 1)
            bridge.wait_for_line("valid telegrams are arriving again")
            assert bridge.stop() == 0
    finally:
        meter.close()
    assert len(bridge.lines("wrong speed")) == 1, bridge.log
    problems = bridge.lines(levels=PROBLEMS)
    assert len(problems) <= 4, "\n".join(problems)  # stale, rejections, their summaries


def test_silent_meter_goes_stale_and_is_reopened_without_spinning(
    mosquitto: MosquittoBroker, meter_path: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    """A meter sending nothing: health 'stale', one log line, reopened once per stale period."""
    prefix = "sf5"
    stale_after = 0.5
    meter = PtyMeter(meter_path)
    try:
        with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/#") as subscriber:
            bridge = start_bridge(
                str(meter_path), mosquitto, prefix, P1MQTT_HEALTH_STALE_AFTER=str(stale_after)
            )
            subscriber.wait_for(has_health(prefix, lambda h: h["state"] == "stale"), timeout=15)
            first_stale = time.monotonic()
            subscriber.wait_for(has_health(prefix, lambda h: h["port_reopens"] >= 4), timeout=10)
            elapsed = time.monotonic() - first_stale
            reopens = max(h["port_reopens"] for h in health_reports(subscriber, prefix))
            print(f"silent meter: {reopens} reopens in {elapsed:.1f} s (stale_after {stale_after})")
            assert reopens <= elapsed / stale_after + 2
            assert bridge.alive()
            meter.write(simulated(1)[0])
            subscriber.wait_for(lambda ms: telegram_count(subscriber, prefix) >= 1)
            bridge.wait_for_line("valid telegrams are arriving again")
            assert bridge.stop() == 0
    finally:
        meter.close()
    assert len(bridge.lines("no data at all")) == 1, bridge.log
    # Reopening a silent port is routine: not one INFO line per reopen.
    assert len(bridge.lines("reading P1 data from", levels=("INFO",))) == 1, bridge.log


def test_unreachable_network_dongle_is_refused_once_and_retried_with_backoff(
    mosquitto: MosquittoBroker, start_bridge: Callable[..., BridgeProcess]
) -> None:
    """socket:// to a closed port: one 'connection refused' line, retries that back off."""
    prefix = "sf6"
    url = f"socket://127.0.0.1:{free_port()}"  # reserved by this process, never listening
    with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/#") as subscriber:
        bridge = start_bridge(
            url,
            mosquitto,
            prefix,
            P1MQTT_SERIAL_REOPEN_DELAY_MIN="0.2",
            P1MQTT_SERIAL_REOPEN_DELAY_MAX="1.0",
        )
        line = bridge.wait_for_line("connection refused")
        assert url in line
        subscriber.wait_for(lambda ms: any(m.topic == f"{prefix}/status" for m in ms))

        def refusals() -> int:
            return sum(
                "connection refused" in h["port"] for h in health_reports(subscriber, prefix)
            )

        subscriber.wait_for(lambda ms: refusals() >= 1, timeout=10)
        counted, since, cpu_before = refusals(), time.monotonic(), bridge.cpu_seconds()
        subscriber.wait_for(lambda ms: refusals() >= counted + 4, timeout=15)
        elapsed = time.monotonic() - since
        cpu = bridge.cpu_seconds() - cpu_before
        attempts = refusals() - counted
        print(
            f"unreachable dongle: {attempts} attempts in {elapsed:.2f} s, "
            f"{cpu:.2f} s CPU ({100 * cpu / elapsed:.0f}%)"
        )
        # Four retries at >= 0.2 s (x0.8 jitter) each, doubling: a spinning reader takes ms.
        assert elapsed >= 4 * 0.2 * 0.8
        assert cpu < 0.3 * elapsed
        assert bridge.alive()
        assert bridge.stop() == 0
    assert len(bridge.lines("connection refused")) == 1, bridge.log


def test_network_dongle_dropping_the_connection_is_reconnected(
    mosquitto: MosquittoBroker, start_bridge: Callable[..., BridgeProcess]
) -> None:
    """A TCP dongle that restarts: the bridge reconnects and the telegrams resume."""
    prefix = "sf7"
    telegrams = simulated(40)
    dongle = TcpMeter()
    dongle.start()
    host, port = dongle.address

    def wait_client(server: TcpMeter) -> None:
        def connected() -> bool:
            server.poll(0.05)
            return server.clients >= 1

        wait_until(connected, timeout=RECOVERY_LIMIT, what="the bridge to connect")

    def stream(raws: list[bytes], until: int) -> None:
        # Streamed like a dongle does, once a second here five times as fast: pyserial empties
        # a socket's input when it opens it (reset_input_buffer), so what the dongle sends
        # between the TCP handshake and that moment is lost, as it would be with real hardware.
        for raw in raws:
            dongle.write(raw)
            if telegram_count(subscriber, prefix) >= until:
                return
            time.sleep(0.2)

    try:
        with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/#") as subscriber:
            bridge = start_bridge(dongle.url, mosquitto, prefix)
            wait_client(dongle)
            subscriber.wait_for(lambda ms: any(m.topic == f"{prefix}/status" for m in ms), 15)
            stream(telegrams[:20], until=3)
            subscriber.wait_for(lambda ms: telegram_count(subscriber, prefix) >= 3)
            dongle.close()  # the dongle reboots: the connection drops, the port is closed
            bridge.wait_for_line(f"network P1 dongle {dongle_url(host, port)}")
            dongle = TcpMeter(host, port)
            dongle.start()
            restarted = time.monotonic()
            wait_client(dongle)
            stream(telegrams[20:], until=6)
            subscriber.wait_for(lambda ms: telegram_count(subscriber, prefix) >= 6)
            recovery = time.monotonic() - restarted
            print(f"network dongle: telegrams flow again {recovery:.2f} s after it came back")
            assert recovery < RECOVERY_LIMIT
            assert bridge.alive()
            assert bridge.stop() == 0
    finally:
        dongle.close()
    bridge_problems = bridge.lines(levels=PROBLEMS)
    assert len(bridge_problems) <= 3, "\n".join(bridge_problems)


def dongle_url(host: str, port: int) -> str:
    """The socket:// URL of a dongle at host:port."""
    return f"socket://{host}:{port}"
