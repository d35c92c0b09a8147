"""Soak: a corrupted stream at line speed through the whole bridge, for minutes.

``p1mqtt run`` runs as its own process, reading a pseudo-terminal meter and publishing to a
Mosquitto started here; this script writes, at the line speed of 115200 baud (about 11.5 KB/s),
a seeded random mix of:

* valid simulated telegrams (T211, 13-month peak history, gas and water);
* the same with one bit flipped in a reading's digit (each must count as one CRC error);
* telegrams cut off before their ``!`` line (truncation);
* garbage bytes (no ``/`` or ``!``, so that every frame boundary stays countable);
* a 64 KB line without a newline, half of the time starting with ``/`` (an overflowing frame).

At the end it checks and prints: the process never died and exits 0 on SIGTERM; resident
memory stayed flat (sampled every 10 s: first, last, max); every valid telegram arrived on
``<prefix>/telegram`` (matched by its 0-0:1.0.0 timestamp) and no corrupted one did; the CRC
errors in ``<prefix>/health`` equal the bit-flipped telegrams written; the log stayed short.

Run: ``.venv/bin/python bench/soak.py`` (10 minutes), ``--minutes N``, ``--quick`` (30 s).
Needs mosquitto. Exits 1 when a check fails.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

# The test suite's Mosquitto and pseudo-terminal helpers drive the real parts here too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from meter_pty import PtyMeter
from mosquitto import MosquittoBroker
from p1mqtt.protocol import Decoder, TelegramDecoded, TelegramJsonEncoder
from p1mqtt.simulator import SimulatedMeter

PREFIX = "soak"
START = datetime(2026, 1, 14, 6, 30, tzinfo=UTC)
LINE_SPEED = 115_200 // 10  # bytes per second: 8N1 sends 10 bits per byte
CHUNK = 1152  # bytes per write: a tenth of a second at line speed
SAMPLE_EVERY = 10.0
RSS_GROWTH_LIMIT_KIB = 8 * 1024
"""Largest growth of resident memory between the first sample after warm-up and the last."""
KINDS = {"valid": 60, "flipped": 12, "truncated": 12, "garbage": 15.5, "long_line": 0.5}
"""Relative weights of the segments written."""


def timestamp_of(telegram: bytes) -> str:
    """The 0-0:1.0.0 value of a telegram as ``<prefix>/telegram`` carries it."""
    (event,) = Decoder().feed(telegram)
    assert isinstance(event, TelegramDecoded)
    document = json.loads(TelegramJsonEncoder().encode(event.telegram))
    return str(document["objects"]["0-0:1.0.0"]["value"])


def flip_a_digit(telegram: bytes, rng: random.Random) -> bytes:
    """One bit flipped in a digit of a reading (never a framing byte): a CRC error."""
    body_start = telegram.index(b"\n") + 1
    body_end = telegram.rindex(b"\n!")
    while True:
        index = rng.randrange(body_start, body_end)
        if 0x30 <= telegram[index] <= 0x39:
            flipped = bytearray(telegram)
            flipped[index] ^= 0x40  # '0'..'9' -> 'p'..'y'
            return bytes(flipped)


def garbage(rng: random.Random, size: int) -> bytes:
    """Random bytes without ``/`` and ``!``."""
    return rng.randbytes(size).replace(b"/", b"\x00").replace(b"!", b"\x01")


@dataclass
class Written:
    """What the writer sent, by kind."""

    valid: list[str] = field(default_factory=list)
    """Timestamps of the intact telegrams, in order."""
    corrupted: list[str] = field(default_factory=list)
    """Timestamps of the flipped and truncated telegrams (none may be published)."""
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    bytes: int = 0


class Writer:
    """Writes the mixed stream into the meter at line speed until stopped."""

    def __init__(self, meter: PtyMeter, seed: int) -> None:
        self._meter = meter
        self._rng = random.Random(seed)
        self._model = SimulatedMeter("t211", start=START, seed=seed)
        self._second = 0
        self._segments = 0
        self._stop = threading.Event()
        self.written = Written()
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="soak-writer")

    def start(self) -> None:
        """Start writing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current segment."""
        self._stop.set()
        self._thread.join(60)

    def _next_telegram(self) -> bytes:
        telegram = self._model.telegram(START + timedelta(seconds=self._second))
        self._second += 1
        return telegram

    def _segment(self) -> tuple[str, bytes]:
        rng = self._rng
        kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        self._segments += 1
        if self._segments in (20, 40):  # even a short run gets both kinds of long line
            kind = "long_line"
        if kind == "garbage":
            return kind, garbage(rng, rng.randint(10, 3000))
        if kind == "long_line":
            line = garbage(rng, 64 * 1024).replace(b"\n", b" ").replace(b"\r", b" ")
            slash = self._segments == 20 or (self._segments != 40 and rng.random() < 0.5)
            return kind, (b"/" + line[1:]) if slash else line
        telegram = self._next_telegram()
        stamp = timestamp_of(telegram)
        if kind == "valid":
            self.written.valid.append(stamp)
            return kind, telegram
        self.written.corrupted.append(stamp)
        if kind == "flipped":
            return kind, flip_a_digit(telegram, rng)
        return kind, telegram[: rng.randrange(1, telegram.rindex(b"\n!"))]

    def _run(self) -> None:
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                kind, data = self._segment()
                for start in range(0, len(data), CHUNK):
                    self._meter.write(data[start : start + CHUNK])
                    self.written.bytes += len(data[start : start + CHUNK])
                    # Throttle to line speed: wait until these bytes would have been sent.
                    due = started + self.written.bytes / LINE_SPEED
                    self._stop.wait(max(0.0, due - time.monotonic()))
                self.written.counts[kind] += 1
        except BaseException as error:
            self.failure = error
            raise


class Receiver:
    """Collects the timestamps of ``<prefix>/telegram`` and the latest ``<prefix>/health``."""

    def __init__(self, host: str, port: int) -> None:
        self.stamps: list[str] = []
        self.health: dict[str, Any] = {}
        self._condition = threading.Condition()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="soak-sub")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda client, *_: client.subscribe(
            [(f"{PREFIX}/telegram", 1), (f"{PREFIX}/health", 1)]
        )
        self._client.connect(host, port)
        self._client.loop_start()

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: Any) -> None:
        document = json.loads(message.payload)
        with self._condition:
            if message.topic.endswith("/telegram"):
                self.stamps.append(str(document["objects"]["0-0:1.0.0"]["value"]))
            else:
                self.health = document
            self._condition.notify_all()

    def wait(self, predicate: Any, timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds; return whether it did in time."""
        with self._condition:
            return self._condition.wait_for(lambda: predicate(self), timeout)

    def close(self) -> None:
        """Disconnect."""
        self._client.loop_stop()
        self._client.disconnect()


def rss_kib(pid: int) -> int:
    """Resident memory of a process, KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    """Run the soak and print the figures; 0 when every check passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="duration (default 10)")
    parser.add_argument("--quick", action="store_true", help="30 seconds (a smoke run)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the stream's mix")
    args = parser.parse_args()
    seconds = 30.0 if args.quick else args.minutes * 60
    print(f"soak: {seconds:.0f} s of a corrupted stream at {LINE_SPEED} bytes/s, seed {args.seed}")

    with tempfile.TemporaryDirectory(prefix="p1mqtt-soak-") as scratch_name:
        scratch = Path(scratch_name)
        broker = MosquittoBroker(scratch / "broker")
        broker.start()
        meter = PtyMeter(scratch / "meter")
        receiver = Receiver(broker.host, broker.port)
        log_path = scratch / "p1mqtt.log"
        env = {name: value for name, value in os.environ.items() if not name.startswith("P1MQTT_")}
        env.update(
            XDG_STATE_HOME=str(scratch / "state"),
            P1MQTT_HOMEASSISTANT_ENABLED="false",
            P1MQTT_HEALTH_PUBLISH_INTERVAL="5",
        )
        command = [sys.executable, "-m", "p1mqtt", "run", "--port", str(meter.path)]
        command += ["--broker", f"mqtt://{broker.host}:{broker.port}", "--prefix", PREFIX]
        with log_path.open("w") as log:
            bridge = subprocess.Popen(command, stderr=log, stdin=subprocess.DEVNULL, env=env)
        writer = Writer(meter, args.seed)
        checks: list[tuple[str, bool]] = []
        try:
            meter.wait_opened_by(bridge.pid)
            if not receiver.wait(lambda r: r.health.get("broker") == "connected", 30):
                raise RuntimeError(f"the bridge did not connect; log:\n{log_path.read_text()}")
            writer.start()
            samples: list[int] = []
            cpu_start = cpu_seconds(bridge.pid)
            started = time.monotonic()
            deadline = started + seconds
            alive = True
            while time.monotonic() < deadline and alive and writer.failure is None:
                samples.append(rss_kib(bridge.pid))
                # Sampling pace, not synchronisation: the soak runs for a fixed time.
                time.sleep(max(0.0, min(SAMPLE_EVERY, deadline - time.monotonic())))
                alive = bridge.poll() is None
            writer.stop()
            elapsed = time.monotonic() - started
            alive = alive and bridge.poll() is None
            samples.append(rss_kib(bridge.pid) if alive else 0)
            cpu = cpu_seconds(bridge.pid) - cpu_start if alive else float("nan")
            written = writer.written
            expected = set(written.valid)
            flipped = written.counts["flipped"]
            receiver.wait(lambda r: expected <= set(r.stamps), 60)
            receiver.wait(lambda r: r.health.get("crc_errors", -1) >= flipped, 30)
            checks.append(("writer ran without error", writer.failure is None))
            checks.append(("bridge alive at the end", alive))
            bridge.send_signal(signal.SIGTERM)
            status = bridge.wait(30)
            checks.append(("exit status 0 on SIGTERM", status == 0))
        finally:
            if bridge.poll() is None:
                bridge.kill()
                bridge.wait(10)
            writer.stop()
            receiver.close()
            meter.close()
            broker.stop()
        received = set(receiver.stamps)
        missing = expected - received
        leaked = set(written.corrupted) & received
        duplicates = len(receiver.stamps) - len(received)
        health = receiver.health
        log_lines = log_path.read_text(errors="replace").splitlines()
        problems = [line for line in log_lines if " WARNING " in line or " ERROR " in line]
        baseline = samples[1] if len(samples) > 2 else samples[0]
        growth = samples[-1] - baseline
        print(
            f"written in {elapsed:.0f} s: {written.bytes} bytes "
            f"({written.bytes / elapsed:.0f} B/s); segments {written.counts}"
        )
        print(
            f"RSS every {SAMPLE_EVERY:.0f} s ({len(samples)} samples): first "
            f"{samples[0] / 1024:.1f} MiB, after warm-up {baseline / 1024:.1f} MiB, last "
            f"{samples[-1] / 1024:.1f} MiB, max {max(samples) / 1024:.1f} MiB"
        )
        print(f"bridge CPU: {cpu:.1f} s over {elapsed:.0f} s ({100 * cpu / elapsed:.1f}%)")
        print(
            f"valid telegrams: {len(expected)} written, {len(expected & received)} received, "
            f"{len(missing)} missing, {duplicates} duplicates; corrupted ones published: "
            f"{len(leaked)}"
        )
        print(
            f"health: crc_errors {health.get('crc_errors')} (bit-flipped written: {flipped}), "
            f"frames_rejected {health.get('frames_rejected')}, bytes_discarded "
            f"{health.get('bytes_discarded')}, telegrams_decoded "
            f"{health.get('telegrams_decoded')}, telegrams_dropped "
            f"{health.get('telegrams_dropped')}, port_reopens {health.get('port_reopens')}"
        )
        print(f"log: {len(log_lines)} lines, {len(problems)} warnings or errors")
        for line in problems[:10]:
            print(f"  {line[:200]}")
        checks += [
            ("every valid telegram delivered", not missing),
            ("no corrupted telegram published", not leaked),
            ("CRC errors == bit-flipped telegrams", health.get("crc_errors") == flipped),
            ("memory flat", growth <= RSS_GROWTH_LIMIT_KIB),
            ("log not flooded", len(problems) <= 20),
        ]
    failed = [name for name, passed in checks if not passed]
    for name, passed in checks:
        print(f"{'ok  ' if passed else 'FAIL'} {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
