"""Decoder benchmark: p1mqtt vs dsmr_parser on the same stream of full Belgian telegrams.

Both produce JSON for every telegram. The stream comes from the simulated Fluvius T211
(e-MUCS 1.7, 13-month peak history, gas and water on M-Bus), one telegram per simulated second,
so the values that change every second on a real meter (clock, powers, voltages, currents,
quarter-hour demand, registers) change here too.

Prints microseconds per telegram for each, the ratio, and p1mqtt's resident memory while it
decodes 100 000 telegrams. Run: ``.venv/bin/python bench/decoder.py`` (``--quick`` for a
shorter run).
"""

import argparse
import gc
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from p1mqtt.protocol import Decoder, TelegramDecoded, TelegramJsonEncoder
from p1mqtt.simulator import SimulatedMeter

CHUNK = 1024  # bytes per read, like a serial port at 115200 baud under load
START = datetime(2026, 1, 14, 6, 30, tzinfo=UTC)


def rss_kib() -> int:
    """Current resident set size in KiB (Linux), or the peak where /proc is absent."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() // 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def make_stream(count: int) -> tuple[bytes, list[str]]:
    """``count`` consecutive telegrams as one byte stream, and each telegram's text."""
    meter = SimulatedMeter("t211", start=START, seed=7, gas=True, water=True)
    telegrams = [meter.telegram(START + timedelta(seconds=i)) for i in range(count)]
    return b"".join(telegrams), [t.decode("ascii") for t in telegrams]


def run_p1mqtt(stream: bytes, cache_size: int) -> tuple[float, int]:
    """Seconds to decode and JSON-encode ``stream`` fed in CHUNK-byte reads; telegrams seen."""
    decoder = Decoder(cache_size=cache_size)
    encoder = TelegramJsonEncoder(cache_size=cache_size)
    count = 0
    started = time.perf_counter()
    for offset in range(0, len(stream), CHUNK):
        for event in decoder.feed(stream[offset : offset + CHUNK]):
            if isinstance(event, TelegramDecoded):
                encoder.encode(event.telegram)
                count += 1
    return time.perf_counter() - started, count


def run_dsmr_parser(texts: list[str]) -> float:
    """Seconds for dsmr_parser to parse each (already framed) telegram and call to_json()."""
    from dsmr_parser import telegram_specifications  # noqa: PLC0415 - test-only dependency
    from dsmr_parser.parsers import TelegramParser  # noqa: PLC0415

    parser = TelegramParser(telegram_specifications.BELGIUM_FLUVIUS)
    started = time.perf_counter()
    for text in texts:
        parser.parse(text).to_json()
    return time.perf_counter() - started


def best_of(runs: int, measure: Callable[[], float]) -> float:
    """The fastest of ``runs`` measurements (the least disturbed by the rest of the machine)."""
    return min(measure() for _ in range(runs))


def memory_profile(stream: bytes, total: int) -> list[tuple[int, int]]:
    """RSS (KiB) after every tenth of ``total`` telegrams, decoding the stream over and over."""
    decoder = Decoder()
    encoder = TelegramJsonEncoder()
    samples: list[tuple[int, int]] = []
    done = 0
    step = total // 10
    while done < total:
        for offset in range(0, len(stream), CHUNK):
            for event in decoder.feed(stream[offset : offset + CHUNK]):
                if isinstance(event, TelegramDecoded):
                    encoder.encode(event.telegram)
                    done += 1
                    if done % step == 0:
                        samples.append((done, rss_kib()))
                    if done >= total:
                        return samples
    return samples


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (for a smoke test)")
    args = parser.parse_args()
    count = 600 if args.quick else 3000
    reference_count = 100 if args.quick else 400
    memory_total = 10_000 if args.quick else 100_000

    stream, texts = make_stream(count)
    print(
        f"stream: {count} simulated T211 telegrams (13-month history, gas, water), "
        f"{len(stream) / count:.0f} bytes each, fed in {CHUNK}-byte reads"
    )
    gc.collect()
    hot = best_of(3, lambda: run_p1mqtt(stream, 512)[0])
    _, seen = run_p1mqtt(stream, 512)
    assert seen == count, f"decoded {seen} of {count}"
    cold = best_of(3, lambda: run_p1mqtt(stream, 0)[0])
    reference = best_of(2, lambda: run_dsmr_parser(texts[:reference_count]))

    ours = hot / count * 1e6
    ours_cold = cold / count * 1e6
    theirs = reference / reference_count * 1e6
    print(f"p1mqtt      {ours:8.1f} µs/telegram (decode + JSON; line memo on, the default)")
    print(f"p1mqtt      {ours_cold:8.1f} µs/telegram (memo off: every line parsed afresh)")
    print(
        f"dsmr_parser {theirs:8.1f} µs/telegram (parse of framed text + to_json, "
        f"{reference_count} telegrams)"
    )
    print(f"ratio       {theirs / ours:8.1f}x faster (memo off: {theirs / ours_cold:.1f}x)")

    samples = memory_profile(stream, memory_total)
    values = [kib for _, kib in samples]
    print(
        f"memory over {memory_total} telegrams: RSS {values[0] / 1024:.1f} MiB after "
        f"{samples[0][0]}, {values[-1] / 1024:.1f} MiB at the end "
        f"(min {min(values) / 1024:.1f}, max {max(values) / 1024:.1f}, "
        f"spread {(max(values) - min(values)) / 1024:.2f} MiB, "
        f"median {statistics.median(values) / 1024:.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
