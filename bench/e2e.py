"""End-to-end benchmark: pseudo-terminal meter -> ``p1mqtt run`` -> Mosquitto -> subscriber.

``p1mqtt run`` runs as its own process, exactly as users run it; a Mosquitto started here on a
free loopback port carries the messages; the subscriber lives in this process, as does the
writer, so both timestamps come from one clock.

Three phases, one run:

1. latency: telegrams written one at a time, 20 ms apart (no queueing between them); for each,
   the time from its last byte written on the pseudo-terminal to its ``<prefix>/telegram``
   message at the subscriber; p50, p99 and max;
2. 1 telegram/s for ``--paced-seconds``: the bridge's CPU time per telegram (user + system,
   idle wake-ups included) and its resident memory;
3. full speed: telegrams written back to back: throughput, CPU per telegram, memory.

Targets (issue "The bridge"): p99 <= 3 ms, CPU <= 0.3 ms per telegram, RSS <= 40 MB and flat.
Run: ``.venv/bin/python bench/e2e.py`` (needs mosquitto; ``--quick`` for a smoke run).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

# The test suite's Mosquitto and pseudo-terminal helpers drive the real parts here too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from meter_pty import PtyMeter
from mosquitto import MosquittoBroker
from p1mqtt.simulator import SimulatedMeter

PREFIX = "bench"
START = datetime(2026, 1, 14, 6, 30, tzinfo=UTC)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Receiver:
    """Subscribes to <prefix>/telegram and records when each telegram arrived."""

    def __init__(self, host: str, port: int) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self._condition = threading.Condition()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, *_: c.subscribe(f"{PREFIX}/telegram", qos=1)
        self._client.connect(host, port)
        self._client.loop_start()

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        now = time.perf_counter()
        with self._condition:
            self.arrivals.append((now, message.payload))
            self._condition.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        """Wait until ``count`` telegrams arrived in total."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.arrivals) >= count, timeout):
                raise TimeoutError(f"{len(self.arrivals)} of {count} telegrams arrived")

    def settle(self, quiet: float = 0.5) -> None:
        """Wait until no message arrived for ``quiet`` seconds (the warm-up's repeats)."""
        with self._condition:
            count = -1
            while count != len(self.arrivals):
                count = len(self.arrivals)
                self._condition.wait(quiet)

    def close(self) -> None:
        """Disconnect."""
        self._client.loop_stop()
        self._client.disconnect()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, KiB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1])
    return values["VmRSS"], values["VmHWM"]


def main() -> int:
    """Run the three phases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (smoke test)")
    parser.add_argument("--latency-count", type=int, default=1000)
    parser.add_argument("--paced-seconds", type=int, default=60)
    parser.add_argument("--burst-count", type=int, default=5000)
    args = parser.parse_args()
    if args.quick:
        args.latency_count, args.paced_seconds, args.burst_count = 100, 5, 300
    total = 1 + args.latency_count + args.paced_seconds + args.burst_count
    meter_model = SimulatedMeter("t211", start=START, seed=3)
    telegrams = [meter_model.telegram(START + timedelta(seconds=i)) for i in range(total)]
    print(
        f"{total} simulated T211 telegrams (13-month history, gas, water), "
        f"{sum(map(len, telegrams)) // total} bytes each"
    )

    with tempfile.TemporaryDirectory(prefix="p1mqtt-bench-") as scratch:
        broker = MosquittoBroker(Path(scratch) / "broker")
        broker.start()
        meter = PtyMeter(Path(scratch) / "meter")
        receiver = Receiver(broker.host, broker.port)
        bridge = subprocess.Popen(
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
                PREFIX,
                "--log-level",
                "WARNING",
                "--data-dir",
                str(Path(scratch) / "state"),
            ],
            env={**os.environ, "P1MQTT_HOMEASSISTANT_ENABLED": "false"},
        )
        try:
            meter.wait_opened_by(bridge.pid)
            # Warm-up: the first telegram, repeated like a meter until it went through the
            # whole chain (the port opened, the broker connected, the code loaded). The
            # repeats are not counted: `extra` arrivals are skipped below.
            with meter.streaming(telegrams[:1]):
                receiver.wait_for(1, timeout=30)
            receiver.settle()
            extra = len(receiver.arrivals) - 1
            index = 1
            # Phase 1: latency.
            written: list[float] = []
            for _ in range(args.latency_count):
                meter.write(telegrams[index])
                written.append(time.perf_counter())
                index += 1
                time.sleep(0.02)
            receiver.wait_for(index + extra, timeout=30)
            latencies = sorted(
                (arrived - sent) * 1000
                for sent, (arrived, _) in zip(written, receiver.arrivals[1 + extra :], strict=True)
            )
            p50 = statistics.median(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"latency over {len(latencies)} telegrams (last byte written -> subscriber): "
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms"
            )

            # Phase 2: one telegram per second.
            cpu_before = cpu_seconds(bridge.pid)
            rss_start, _ = memory_kib(bridge.pid)
            next_at = time.monotonic()
            for _ in range(args.paced_seconds):
                next_at += 1.0
                meter.write(telegrams[index])
                index += 1
                time.sleep(max(0.0, next_at - time.monotonic()))
            receiver.wait_for(index + extra, timeout=30)
            cpu_paced = cpu_seconds(bridge.pid) - cpu_before
            rss_paced, peak_paced = memory_kib(bridge.pid)
            print(
                f"1 telegram/s for {args.paced_seconds} s: "
                f"CPU {cpu_paced / args.paced_seconds * 1000:.3f} "
                f"ms per telegram (idle wake-ups included), RSS {rss_start / 1024:.1f} -> "
                f"{rss_paced / 1024:.1f} MiB, peak {peak_paced / 1024:.1f} MiB"
            )

            # Phase 3: full speed.
            cpu_before = cpu_seconds(bridge.pid)
            started = time.perf_counter()
            burst = b"".join(telegrams[index : index + args.burst_count])
            writer = threading.Thread(target=meter.write, args=(burst,))
            writer.start()
            index += args.burst_count
            receiver.wait_for(index + extra, timeout=300)
            elapsed = time.perf_counter() - started
            writer.join()
            cpu_burst = cpu_seconds(bridge.pid) - cpu_before
            rss_end, peak_end = memory_kib(bridge.pid)
            print(
                f"full speed, {args.burst_count} telegrams: {args.burst_count / elapsed:.0f} "
                f"telegrams/s, CPU {cpu_burst / args.burst_count * 1000:.3f} ms per telegram, "
                f"RSS {rss_end / 1024:.1f} MiB, peak {peak_end / 1024:.1f} MiB"
            )
            received = len(receiver.arrivals) - extra
            print(f"telegrams written {index}, received {received}, lost {index - received}")
        finally:
            bridge.terminate()
            bridge.wait(10)
            receiver.close()
            meter.close()
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
