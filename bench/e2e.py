"""End-to-end benchmark: pseudo-terminal meter -> ``p1mqtt run`` -> Mosquitto -> subscriber.

``p1mqtt run`` runs as its own process, exactly as users run it; a Mosquitto started here on a
free loopback port carries the messages; the subscriber lives in this process, as does the
writer, so both timestamps come from one clock.

Three phases, one run:

1. latency: telegrams written one at a time, 20 ms apart (no queueing between them); for each,
   the time from its last byte written on the pseudo-terminal to its ``<prefix>/telegram``
   message at the subscriber; p50, p99 and max;
2. 1 telegram/s for ``--paced-seconds``: the bridge's CPU time per telegram (user + system,
   idle wake-ups included), split by thread, and its resident memory;
3. full speed: telegrams written back to back: throughput, CPU per telegram, memory.

Reference figures, measured in the same run on the same telegrams, to compare the bridge's
against (they are what any Python bridge pays on this machine, not p1mqtt's figures):

* decoder floor: ``Decoder.feed`` + ``TelegramJsonEncoder.encode`` alone, in this process,
  CPU time of the work only (``time.thread_time``). One decoder sees the bridge's stream: the
  warm-up and phase 1 untimed, phase 2's telegrams paced at 1/s (half a second after the
  bridge's, so each runs "cold" as the bridge's does), phase 3's back to back (after phase 3);
* minimal bridge floor: the smallest single-threaded bridge, a thread of this process: pyserial
  opens a second pseudo-terminal meter, one ``select`` loop reads it, decodes, encodes the JSON
  and publishes it once at QoS 1 with paho (its own network loop) to the same Mosquitto, under
  ``bench-reference/``. During phase 2 it gets the same telegrams at 1/s, a third of a second
  after the bridge; its CPU per telegram (``time.thread_time``, wake-ups included) is printed
  beside the bridge's. It does no timestamps, topics, health or store-and-forward.

The references run while the bridge is idle (no latency is measured then), so neither
disturbs the other's figures. CPU times are in nanoseconds where Linux gives them: the bridge
process's from its CPU-time clock (``clock_gettime``, exited threads included), its threads'
from ``/proc/PID/task/TID/schedstat``; in clock ticks from ``/proc/.../stat`` otherwise.

Targets (issue "The bridge"): p99 <= 3 ms, CPU <= 0.3 ms per telegram, RSS <= 40 MB and flat.
Run: ``.venv/bin/python bench/e2e.py`` (needs mosquitto; ``--quick`` for a smoke run).
"""

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import serial

# The test suite's Mosquitto and pseudo-terminal helpers drive the real parts here too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from meter_pty import PtyMeter
from mosquitto import MosquittoBroker
from p1mqtt.protocol import Decoder, TelegramDecoded, TelegramJsonEncoder
from p1mqtt.simulator import SimulatedMeter

PREFIX = "bench"
REFERENCE_PREFIX = "bench-reference"
START = datetime(2026, 1, 14, 6, 30, tzinfo=UTC)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SCHEDSTAT = Path("/proc/self/schedstat").exists()
# When, within each second of phase 2, the minimal bridge and the decoder floor get their
# telegram (the bridge gets its own at 0): apart, so that none delays another.
MINIMAL_BRIDGE_OFFSET = 1 / 3
DECODER_FLOOR_OFFSET = 2 / 3


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

    def wait_for_telegram(self, data: bytes, timeout: float) -> None:
        """Wait until the message of telegram ``data`` (found by its meter timestamp) arrived."""
        stamp = meter_time(data).encode()
        scanned = 0

        def arrived() -> bool:
            nonlocal scanned
            found = any(stamp in payload for _, payload in self.arrivals[scanned:])
            scanned = len(self.arrivals)
            return found

        with self._condition:
            if not self._condition.wait_for(arrived, timeout):
                raise TimeoutError(f"telegram {stamp.decode()} did not arrive")

    def settle(self, quiet: float = 0.5) -> None:
        """Wait until no message arrived for ``quiet`` seconds (the warm-up's repeats)."""
        with self._condition:
            count = -1
            while count != len(self.arrivals):
                count = len(self.arrivals)
                self._condition.wait(quiet)

    def first_arrivals(self) -> dict[str, float]:
        """{meter timestamp: when the first message with it arrived} (parsed after the fact)."""
        with self._condition:
            arrivals = list(self.arrivals)
        first: dict[str, float] = {}
        for arrived, payload in arrivals:
            stamp = json.loads(payload)["objects"]["0-0:1.0.0"]["value"]
            first.setdefault(stamp, arrived)
        return first

    def close(self) -> None:
        """Disconnect."""
        self._client.loop_stop()
        self._client.disconnect()


class DecoderFloor:
    """REFERENCE: decode + JSON alone, in this process; CPU of the work only."""

    def __init__(self) -> None:
        self._decoder = Decoder()
        self._encoder = TelegramJsonEncoder()

    def run(self, telegrams: Sequence[bytes]) -> float:
        """Decode and encode ``telegrams`` back to back; the thread's CPU seconds it took."""
        decoder, encode = self._decoder, self._encoder.encode
        started = time.thread_time()
        for data in telegrams:
            for event in decoder.feed(data):
                if isinstance(event, TelegramDecoded):
                    encode(event.telegram)
        return time.thread_time() - started


class MinimalBridge(threading.Thread):
    """REFERENCE, not p1mqtt: the smallest single-threaded bridge doing the same job.

    pyserial opens and configures the port; one ``select`` loop reads it, decodes, encodes the
    JSON, publishes it once at QoS 1 and runs paho's network loop (acknowledgements, keepalive).
    ``cpu_seconds`` is the thread's CPU time at the end of its latest loop turn.
    """

    def __init__(self, port: Path, host: str, broker_port: int) -> None:
        super().__init__(name="minimal-bridge", daemon=True)
        self.published = 0
        self.cpu_seconds = 0.0
        self._port = serial.Serial(str(port), 115200)
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-reference")
        self._client.connect(host, broker_port)
        deadline = time.monotonic() + 10
        while not self._client.is_connected():
            if time.monotonic() > deadline:
                raise TimeoutError("the minimal bridge did not connect")
            self._client.loop(0.1)
        self._stop_read, self._stop_write = os.pipe()

    def run(self) -> None:
        """Bridge until ``stop()``."""
        decoder, encoder = Decoder(), TelegramJsonEncoder()
        client, port = self._client, self._port.fileno()
        sock = client.socket()
        if sock is None:
            raise ConnectionError("the minimal bridge lost its broker connection")
        network = sock.fileno()
        readers = [port, network, self._stop_read]
        while True:
            writers = [network] if client.want_write() else []
            readable, writable, _ = select.select(readers, writers, [], 30.0)
            if self._stop_read in readable:
                break
            if network in readable:
                client.loop_read()
            if writable:
                client.loop_write()
            if port in readable:
                for event in decoder.feed(os.read(port, 65536)):
                    if isinstance(event, TelegramDecoded):
                        payload = encoder.encode(event.telegram)
                        client.publish(f"{REFERENCE_PREFIX}/telegram", payload, qos=1)
                        self.published += 1
            client.loop_misc()
            self.cpu_seconds = time.thread_time()
        client.disconnect()
        self._port.close()

    def wait_published(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` telegrams were published in total."""
        deadline = time.monotonic() + timeout
        while self.published < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the minimal bridge published {self.published} of {count}")
            time.sleep(0.005)

    def stop(self) -> None:
        """End the loop and wait for the thread."""
        os.write(self._stop_write, b"x")
        self.join(10)
        os.close(self._stop_read)
        os.close(self._stop_write)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, all its threads (exited ones too)."""
    try:
        # The process's CPU-time clock, as clock_getcpuclockid() makes it: nanoseconds.
        return time.clock_gettime(((~pid) << 3) | 2)
    except OSError:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """{thread id: (name, CPU seconds so far)} for the live threads of a process."""
    threads = {}
    for entry in os.listdir(f"/proc/{pid}/task"):
        task = f"/proc/{pid}/task/{entry}"
        try:
            with open(f"{task}/comm", encoding="utf-8") as comm:
                name = comm.read().strip()
            if SCHEDSTAT:
                with open(f"{task}/schedstat", encoding="ascii") as schedstat:
                    seconds = int(schedstat.read().split()[0]) / 1e9
            else:
                with open(f"{task}/stat", encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except FileNotFoundError:
            continue  # the thread exited meanwhile
        threads[int(entry)] = (name, seconds)
    return threads


def thread_split(
    pid: int,
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    total: float,
    count: int,
) -> str:
    """Each thread's CPU per telegram, ms, between two samples; the rest is exited threads'."""
    leader = after.get(pid, ("", 0.0))[0]
    parts = []
    rest = total
    for tid, (name, seconds) in sorted(after.items()):
        used = seconds - before.get(tid, (name, 0.0))[1]
        rest -= used
        label = "main" if tid == pid else f"{tid}" + (f" {name}" if name != leader else "")
        parts.append(f"{label} {used / count * 1000:.3f}")
    parts.append(f"exited {max(rest, 0.0) / count * 1000:.3f}")
    return ", ".join(parts)


def memory_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, KiB."""
    values = _status_kib(pid)
    return values["VmRSS"], values["VmHWM"]


def _status_kib(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                values[name] = int(rest.split()[0])
    return values


def memory_split(pid: int) -> str:
    """The RSS in MB too (the target's unit), and what it is made of."""
    values = _status_kib(pid)
    return (
        f"RSS now {values['VmRSS'] * 1024 / 1e6:.1f} MB: {values.get('RssAnon', 0) / 1024:.1f} MiB "
        f"private (heap, Python objects, stacks) + {values.get('RssFile', 0) / 1024:.1f} MiB "
        "mapped files (libpython, pydantic-core, libcrypto, sqlite...: shareable, evictable)"
    )


def meter_time(data: bytes) -> str:
    """The meter timestamp of a telegram, as ``<prefix>/telegram`` carries it."""
    for event in Decoder().feed(data):
        if isinstance(event, TelegramDecoded) and event.telegram.timestamp is not None:
            return event.telegram.timestamp.isoformat()
    raise ValueError("a telegram without a timestamp")


def sleep_until(moment: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``moment``."""
    time.sleep(max(0.0, moment - time.monotonic()))


def main() -> int:
    """Run the three phases and the references, and print the figures."""
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
        reference_meter = PtyMeter(Path(scratch) / "reference-meter")
        minimal = MinimalBridge(reference_meter.path, broker.host, broker.port)
        minimal.start()
        floor = DecoderFloor()
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
            # whole chain (the port opened, the broker connected, the code loaded). Arrivals
            # are matched to telegrams by meter timestamp, so the repeats do not count.
            with meter.streaming(telegrams[:1]):
                receiver.wait_for(1, timeout=30)
            receiver.settle()
            index = 1
            # Phase 1: latency.
            written: list[float] = []
            for _ in range(args.latency_count):
                meter.write(telegrams[index])
                written.append(time.perf_counter())
                index += 1
                time.sleep(0.02)
            receiver.wait_for_telegram(telegrams[index - 1], timeout=30)
            # Matched by the meter's timestamp, not by position: a warm-up repeat arriving
            # late must not shift every pairing.
            first_arrival = receiver.first_arrivals()
            latencies = sorted(
                (first_arrival[meter_time(data)] - sent) * 1000
                for sent, data in zip(written, telegrams[1:index], strict=True)
            )
            p50 = statistics.median(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"latency over {len(latencies)} telegrams (last byte written -> subscriber): "
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms"
            )

            # The references' warm-up, untimed: the decoder floor sees what the bridge saw so
            # far; the minimal bridge gets the last two telegrams of phase 1.
            floor.run(telegrams[:index])
            for count, data in enumerate(telegrams[index - 2 : index], start=1):
                reference_meter.write(data)
                minimal.wait_published(count)
            time.sleep(0.1)  # its last acknowledgement arrives before the window opens

            # Phase 2: one telegram per second, to the bridge, then to the references.
            cpu_before = cpu_seconds(bridge.pid)
            threads_before = thread_cpu_seconds(bridge.pid)
            minimal_before = minimal.cpu_seconds
            floor_paced = 0.0
            rss_start, _ = memory_kib(bridge.pid)
            second = time.monotonic()
            for _ in range(args.paced_seconds):
                meter.write(telegrams[index])
                sleep_until(second + MINIMAL_BRIDGE_OFFSET)
                reference_meter.write(telegrams[index])
                sleep_until(second + DECODER_FLOOR_OFFSET)
                floor_paced += floor.run(telegrams[index : index + 1])
                index += 1
                second += 1.0
                sleep_until(second)
            receiver.wait_for_telegram(telegrams[index - 1], timeout=30)
            cpu_paced = cpu_seconds(bridge.pid) - cpu_before
            threads_after = thread_cpu_seconds(bridge.pid)
            minimal.wait_published(2 + args.paced_seconds)
            minimal_paced = minimal.cpu_seconds - minimal_before
            rss_paced, peak_paced = memory_kib(bridge.pid)
            print(
                f"1 telegram/s for {args.paced_seconds} s: "
                f"CPU {cpu_paced / args.paced_seconds * 1000:.3f} "
                f"ms per telegram (idle wake-ups included), RSS {rss_start / 1024:.1f} -> "
                f"{rss_paced / 1024:.1f} MiB, peak {peak_paced / 1024:.1f} MiB"
            )
            split = thread_split(
                bridge.pid, threads_before, threads_after, cpu_paced, args.paced_seconds
            )
            print(f"  by bridge thread (thread id), ms per telegram: {split}")
            print(f"  {memory_split(bridge.pid)}")
            print(
                f"  REFERENCE decoder floor at 1/s (Decoder.feed + JSON only, in the bench): "
                f"CPU {floor_paced / args.paced_seconds * 1000:.3f} ms per telegram"
            )
            print(
                f"  REFERENCE minimal bridge at 1/s (one thread: pyserial port, decode, JSON, "
                f"1 QoS-1 paho publish; not p1mqtt): CPU "
                f"{minimal_paced / args.paced_seconds * 1000:.3f} ms per telegram"
            )

            # Phase 3: full speed.
            cpu_before = cpu_seconds(bridge.pid)
            started = time.perf_counter()
            burst_telegrams = telegrams[index : index + args.burst_count]
            writer = threading.Thread(target=meter.write, args=(b"".join(burst_telegrams),))
            writer.start()
            index += args.burst_count
            receiver.wait_for_telegram(telegrams[index - 1], timeout=300)
            elapsed = time.perf_counter() - started
            writer.join()
            cpu_burst = cpu_seconds(bridge.pid) - cpu_before
            rss_end, peak_end = memory_kib(bridge.pid)
            print(
                f"full speed, {args.burst_count} telegrams: {args.burst_count / elapsed:.0f} "
                f"telegrams/s, CPU {cpu_burst / args.burst_count * 1000:.3f} ms per telegram, "
                f"RSS {rss_end / 1024:.1f} MiB, peak {peak_end / 1024:.1f} MiB"
            )
            print(f"  {memory_split(bridge.pid)}")
            floor_burst = floor.run(burst_telegrams)
            print(
                f"  REFERENCE decoder floor back to back (same telegrams, after phase 3): "
                f"CPU {floor_burst / args.burst_count * 1000:.3f} ms per telegram"
            )
            arrived = receiver.first_arrivals()
            received = sum(meter_time(data) in arrived for data in telegrams[:index])
            print(
                f"telegrams written {index}, received {received} (messages "
                f"{len(receiver.arrivals)}, the warm-up's repeats included), lost "
                f"{index - received}"
            )
        finally:
            bridge.terminate()
            bridge.wait(10)
            minimal.stop()
            receiver.close()
            meter.close()
            reference_meter.close()
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
