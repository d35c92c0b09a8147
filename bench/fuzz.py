"""Long fuzzing runs of the decoder and the configuration loader, outside the test suite.

Two targets, each checking the invariants the suite checks with a few dozen examples:

* ``decoder``: bytes in, in any chunking, with or without their CRCs fixed up (so that mutated
  telegrams reach the object parser instead of failing their CRC). Invariants: nothing raises;
  the buffer never holds more than ``max_telegram_size``; feeding the stream whole or in chunks
  gives the same telegrams, rejections and discarded byte count; every byte is decoded,
  rejected or discarded; every decoded telegram encodes to JSON.
* ``config``: bytes as a JSON or TOML configuration file, or as ``P1MQTT_*`` environment
  variables. Invariant: a ``Config`` or a ``ConfigError``, never another exception (which the
  CLI would show as a traceback), and never a message showing the fuzzer's password.

Engines: atheris (coverage-guided libFuzzer, ``pip install atheris``) when it is installed,
else hypothesis with a large ``max_examples`` and no deadline. Examples::

    .venv/bin/python bench/fuzz.py decoder --seconds 180
    .venv/bin/python bench/fuzz.py all --seconds 180 --engine hypothesis

A failure prints the input and exits non-zero; atheris also writes it to the artifact directory
shown at the start (replay it with ``bench/fuzz.py TARGET --replay FILE``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The test suite's telegrams and strategies are the seeds and generators here too.
sys.path.insert(0, str(ROOT / "tests"))

TARGETS = ("decoder", "config")
MAX_SIZES = (64, 300, 1024, 16 * 1024)
SECRET = "pw-Zq8vX3kT"  # noqa: S105 - a marker to look for in messages, not a credential
"""The fuzzer's password: no configuration error message may show it."""


# --- the decoder target -------------------------------------------------------------------


def with_fixed_crcs(data: bytes) -> bytes:
    """``data`` with the 4 characters after each ``\\n!`` replaced by its frame's real CRC."""
    from p1mqtt.protocol import crc16_arc  # noqa: PLC0415 - imported after instrumentation

    out = bytearray()
    position = 0
    while True:
        bang = data.find(b"\n!", position)
        if bang < 0:
            out += data[position:]
            return bytes(out)
        end = bang + 2
        start = data.rfind(b"/", position, bang)
        out += data[position:end]
        if start >= 0:
            out += f"{crc16_arc(data[start:end]):04X}".encode()
            end = min(end + 4, len(data))
        position = end


def _split(stream: bytes, seed: int) -> list[bytes]:
    """Cut ``stream`` into chunks of 1..256 bytes, the same way for the same seed."""
    rng = random.Random(seed)
    chunks = []
    position = 0
    while position < len(stream):
        size = rng.randint(1, 256) if seed else 1
        chunks.append(stream[position : position + size])
        position += size
    return chunks


def _decode(chunks: list[bytes], max_size: int) -> tuple[list[Any], list[Any], int, int]:
    """Telegrams, rejections, discarded and accounted-for byte counts; checks the bound."""
    from p1mqtt.protocol import (  # noqa: PLC0415 - imported after instrumentation
        BytesDiscarded,
        Decoder,
        FrameRejected,
        TelegramDecoded,
        TelegramJsonEncoder,
    )

    decoder = Decoder(max_telegram_size=max_size)
    encoder = TelegramJsonEncoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
        if decoder.buffered > max_size:
            raise AssertionError(f"{decoder.buffered} bytes buffered, bound {max_size}")
    events += decoder.close()
    if decoder.buffered:
        raise AssertionError("bytes left buffered after close()")
    telegrams, rejections, discarded, used = [], [], 0, 0
    for event in events:
        if isinstance(event, TelegramDecoded):
            telegrams.append((event.telegram, event.offset))
            used += len(event.telegram.raw)
            json.loads(encoder.encode(event.telegram))
        elif isinstance(event, FrameRejected):
            rejections.append((event.reason, event.offset, event.size, event.frame))
            used += event.size
        elif isinstance(event, BytesDiscarded):
            discarded += event.count
        else:
            raise AssertionError(f"unexpected event {event!r}")  # noqa: TRY004 - a finding
    return telegrams, rejections, discarded, used + discarded


def check_decoder(stream: bytes, max_size: int, split_seed: int) -> None:
    """The decoder's invariants for one stream."""
    whole = _decode([stream], max_size)
    pieces = _decode(_split(stream, split_seed), max_size)
    if whole != pieces:
        raise AssertionError(f"chunking (seed {split_seed}) changed the result")
    if whole[3] != len(stream):
        raise AssertionError(f"{whole[3]} bytes accounted for out of {len(stream)}")


def decoder_input(data: bytes) -> None:
    """One raw fuzz input: 2 parameter bytes, then the stream."""
    if len(data) < 2:
        return
    mode, split_seed, stream = data[0], data[1], data[2:]
    if mode & 1:
        stream = with_fixed_crcs(stream)
    check_decoder(stream, MAX_SIZES[(mode >> 1) % len(MAX_SIZES)], split_seed)


def decoder_seeds() -> Iterator[bytes]:
    """The project's telegrams, alone, doubled, and with noise, as raw inputs."""
    from telegrams import project_telegrams  # noqa: PLC0415

    for index, telegram in enumerate(project_telegrams().values()):
        yield bytes([index % 8, index]) + telegram
        yield bytes([7, 0]) + b"\x00garbage/" + telegram + telegram[: len(telegram) // 2]


# --- the configuration target -------------------------------------------------------------


class ConfigChecker:
    """Loads fuzzed files and environments from one scratch directory."""

    def __init__(self, scratch: Path) -> None:
        from p1mqtt.config import environment_variables  # noqa: PLC0415

        self.scratch = scratch
        self.variables = sorted(environment_variables())

    def check(self, path: Path | None, env: dict[str, str]) -> None:
        """A Config or a ConfigError without the secret; anything else propagates."""
        from p1mqtt.config import Config, load_config  # noqa: PLC0415
        from p1mqtt.errors import ConfigError  # noqa: PLC0415

        try:
            config = load_config(path, env=env)
        except ConfigError as error:
            if SECRET in str(error) or not str(error).strip():
                raise AssertionError(f"bad error message: {error}") from error
            return
        if not isinstance(config, Config):
            raise AssertionError(f"load_config returned {config!r}")  # noqa: TRY004
        if SECRET in json.dumps(config.redacted()):
            raise AssertionError("the password shows in the redacted configuration")

    def file(self, data: bytes, suffix: str) -> None:
        """``data`` as the configuration file."""
        path = self.scratch / f"fuzz{suffix}"
        path.write_bytes(data)
        self.check(path, {})

    def environment(self, data: bytes) -> None:
        """``data`` as lines ``<variable index byte><value>``, one variable each."""
        env = {}
        for line in data.split(b"\n"):
            if line:
                name = self.variables[line[0] % len(self.variables)]
                env[name] = line[1:].decode("latin-1").replace("\0", "")
        self.check(None, env)

    def raw(self, data: bytes) -> None:
        """One raw fuzz input: 1 byte picks JSON, TOML or the environment."""
        if not data:
            return
        # Only mode 3 places the password, and only where secrets go: elsewhere it may be shown.
        kind, rest = data[0] % 4, data[1:].replace(SECRET.encode(), b"?")
        if kind == 0:
            self.file(rest, ".json")
        elif kind == 1:
            self.file(rest, ".toml")
        elif kind == 2:
            self.environment(rest)
        else:  # the password in the environment and in a broker URL with a fuzzed tail
            tail, _, document = rest.partition(b"\n")
            path = self.scratch / "fuzz.json"
            path.write_bytes(document)
            broker = f"mqtt://user:{SECRET}@" + tail.decode("latin-1").replace("\0", "")
            self.check(path, {"P1MQTT_MQTT_PASSWORD": SECRET, "P1MQTT_MQTT_BROKER": broker})


def config_seeds() -> Iterator[bytes]:
    """A few valid and nearly valid configurations in each form."""
    from p1mqtt.config import Config  # noqa: PLC0415

    defaults = Config().model_dump(mode="json")
    yield b"\x00" + json.dumps(defaults).encode()
    yield b"\x00" + b'{"serial": {"port": "/dev/ttyUSB0", "format": "7E1"}, "mqtt": {"qos": 2}}'
    yield b"\x01" + b'[serial]\nport = "socket://10.0.0.5:8088"\n[mqtt]\nbroker = "mqtts://h"\n'
    yield b"\x01" + b'[meter]\ntimezone = "Europe/Amsterdam"\n[filters]\nmin_interval = 5\n'
    yield b"\x02" + b"\x05Europe/Brussels\n\x0fmqtts://user@h:8883\n\x20DEBUG"
    yield b"\x03" + b'broker.lan:1883\n{"mqtt": {"qos": 2}}'
    yield b"\x03" + b'[::1]:99999/x\n{"mqtt": {"password": 5}}'


# --- engines ------------------------------------------------------------------------------


def run_atheris(target: str, seconds: int, corpus: Path, artifacts: Path) -> int:
    """Run libFuzzer through atheris; it prints its own statistics and exits."""
    import atheris  # noqa: PLC0415

    with atheris.instrument_imports(include=["p1mqtt"]):
        import p1mqtt.config  # noqa: PLC0415
        import p1mqtt.protocol  # noqa: F401, PLC0415

    if target == "decoder":
        seeds: Iterator[bytes] = decoder_seeds()
        one_input: Callable[[bytes], None] = decoder_input
        max_len = 16 * 1024
    else:
        scratch = Path(tempfile.mkdtemp(prefix="p1mqtt-fuzz-config-"))
        one_input = ConfigChecker(scratch).raw
        seeds = config_seeds()
        max_len = 4096
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index:03d}").write_bytes(seed)
    print(f"atheris: {target} for {seconds} s; corpus {corpus}; failures go to {artifacts}/")
    argv = [
        sys.argv[0],
        f"-max_total_time={seconds}",
        f"-max_len={max_len}",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
        str(corpus),
    ]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()  # exits the process
    return 0  # pragma: no cover


def run_hypothesis(target: str, seconds: int) -> int:
    """Run batches of hypothesis examples until ``seconds`` passed; print the count."""
    from hypothesis import HealthCheck, given, settings  # noqa: PLC0415
    from hypothesis import strategies as st  # noqa: PLC0415

    from strategies import streams  # noqa: PLC0415

    count = 0
    batch = settings(
        max_examples=500,  # a batch: the time budget is checked between batches
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    if target == "decoder":
        raw_streams = st.one_of(
            streams(), st.binary(max_size=4000), st.sampled_from(list(decoder_seeds()))
        )

        @batch
        @given(
            stream=raw_streams,
            fix=st.booleans(),
            size=st.sampled_from(MAX_SIZES),
            split=st.integers(0, 255),
        )
        def one(stream: bytes, fix: bool, size: int, split: int) -> None:
            nonlocal count
            count += 1
            check_decoder(with_fixed_crcs(stream) if fix else stream, size, split)

    else:
        from test_config_fuzz import (  # noqa: PLC0415
            JSON_VALUES,
            SECRET_URLS,
            shaped_documents,
            texts,
        )

        checker = ConfigChecker(Path(tempfile.mkdtemp(prefix="p1mqtt-fuzz-config-")))
        documents = st.one_of(JSON_VALUES, shaped_documents()).map(
            lambda document: (json.dumps(document).encode(), ".json")
        )
        files = st.one_of(
            documents,
            st.tuples(
                st.binary(max_size=600).map(lambda data: data.replace(SECRET.encode(), b"?")),
                st.sampled_from([".json", ".toml"]),
            ),
        )
        env = st.dictionaries(
            st.sampled_from(checker.variables),
            texts(30).map(lambda text: text.replace("\0", "")),
            max_size=6,
        )

        @batch
        @given(
            file=st.none() | files,
            variables=env,
            password=st.booleans(),
            broker=st.none() | SECRET_URLS,
        )
        def one(
            file: tuple[bytes, str] | None,
            variables: dict[str, str],
            password: bool,
            broker: str | None,
        ) -> None:
            nonlocal count
            count += 1
            if password:
                variables["P1MQTT_MQTT_PASSWORD"] = SECRET
            if broker is not None:
                variables["P1MQTT_MQTT_BROKER"] = broker
            path = None
            if file is not None:
                path = checker.scratch / f"fuzz{file[1]}"
                path.write_bytes(file[0])
            checker.check(path, variables)

    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        one()
    elapsed = time.monotonic() - started
    print(f"hypothesis: {target}: {count} inputs in {elapsed:.0f} s, no failure")
    return 0


def main() -> int:
    """Parse the arguments and fuzz."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=[*TARGETS, "all"])
    parser.add_argument("--seconds", type=int, default=180, help="time per target (default 180)")
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "p1mqtt-fuzz",
        help="corpus and crash artifacts live under WORKDIR/TARGET/ (kept between runs)",
    )
    parser.add_argument("--replay", type=Path, help="run one saved input (atheris format)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the loader's warnings (readable password file) are noise
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if importlib.util.find_spec("atheris") else "hypothesis"
    if args.target == "all":
        # libFuzzer owns its process until it exits: one process per target.
        status = 0
        for target in TARGETS:
            command = [sys.executable, __file__, target, "--seconds", str(args.seconds)]
            command += ["--engine", engine, "--workdir", str(args.workdir)]
            status |= subprocess.run(command, check=False).returncode
        return status
    if args.replay is not None:
        replay(args.target, args.replay)
        return 0
    if engine == "atheris":
        work = args.workdir / args.target
        return run_atheris(args.target, args.seconds, work / "corpus", work / "crashes")
    return run_hypothesis(args.target, args.seconds)


def replay(target: str, path: Path) -> None:
    """Run one saved raw input (an atheris crash file); raises what the target raises."""
    data = path.read_bytes()
    if target == "decoder":
        decoder_input(data)
    else:
        ConfigChecker(Path(tempfile.mkdtemp(prefix="p1mqtt-fuzz-config-"))).raw(data)
    print(f"{path}: no failure")


if __name__ == "__main__":
    sys.exit(main())
