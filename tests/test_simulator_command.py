"""``p1mqtt simulate`` and its outputs: stdout, a pseudo-terminal, a TCP server."""

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import serial

from p1mqtt.commands.simulate import Pacer, parse_tcp_address
from p1mqtt.errors import UsageError
from p1mqtt.protocol import Decoder, Telegram, TelegramDecoded
from p1mqtt.simulator import SimulatedMeter, stream
from p1mqtt.simulator_output import PtyMeter, TcpMeter

TIMEOUT = 15.0


def wait_for(condition: Callable[[], object], timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)


def simulate(*args: str) -> subprocess.Popen[bytes]:
    """Start ``p1mqtt simulate ARGS`` in a subprocess."""
    command = [sys.executable, "-m", "p1mqtt", "simulate", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Subprocesses to kill if a test leaves them running."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=TIMEOUT)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def read_line(process: subprocess.Popen[bytes]) -> str:
    """The next line the process prints on stdout, waiting at most TIMEOUT."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
    assert ready, "no output from p1mqtt simulate"
    return process.stdout.readline().decode().strip()


def decode_all(data: bytes) -> list[Telegram]:
    """Every telegram in ``data``; fails on any rejected frame."""
    decoder = Decoder()
    telegrams: list[Telegram] = []
    for event in [*decoder.feed(data), *decoder.close()]:
        assert isinstance(event, TelegramDecoded), event
        telegrams.append(event.telegram)
    return telegrams


def first_telegram(read: Callable[[], bytes], timeout: float = TIMEOUT) -> Telegram:
    """Read chunks until a complete telegram decodes (leading partial frames are skipped)."""
    decoder = Decoder()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in decoder.feed(read()):
            if isinstance(event, TelegramDecoded):
                return event.telegram
    pytest.fail("no telegram decoded")


def test_stdout_fast_count_writes_exactly_that_many_telegrams() -> None:
    """--stdout --count 3 --fast: three valid telegrams one second apart, across DST."""
    result = subprocess.run(
        [sys.executable, "-m", "p1mqtt", "simulate", "--stdout", "--count", "3", "--fast",
         "--start", "2026-03-29T01:59:59+01:00", "--model", "s211"],
        capture_output=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    telegrams = decode_all(result.stdout)
    stamps = [t.raw.decode().split("0-0:1.0.0(")[1][:13] for t in telegrams]
    assert stamps == ["260329015959W", "260329030000S", "260329030001S"]
    assert all(t.header == "FLU5\\253770234_A" for t in telegrams)


def test_stdout_pipe_closed_early_is_not_an_error() -> None:
    """A reader that stops reading (`| head -c 100`) ends the simulator quietly with 0."""
    process = simulate("--stdout", "--fast")
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(100)
    process.stdout.close()
    assert process.wait(timeout=TIMEOUT) == 0
    assert process.stderr.read() == b""
    process.stderr.close()


def test_pty_mode_serves_a_serial_reader(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Default mode: a pseudo-terminal behind --link that pyserial reads like a meter."""
    link = tmp_path / "meter"
    process = simulate("--count", "3", "--interval", "0.2", "--link", str(link))
    processes.append(process)
    wait_for(lambda: link.is_symlink() or process.poll() is not None)
    assert link.is_symlink(), process.stderr.read() if process.stderr else ""
    with serial.Serial(str(link), timeout=0.2) as port:
        telegram = first_telegram(lambda: port.read(4096))
    assert telegram.header == "FLU5\\253769484_A"
    assert process.wait(timeout=TIMEOUT) == 0
    assert read_line(process).startswith("simulated meter on /dev/")
    assert not link.is_symlink()


def test_pty_mode_announces_its_path(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """The pseudo-terminal's path is printed, and the link points at it while running."""
    link = tmp_path / "meter"
    process = simulate("--link", str(link), "--interval", "0.2")
    processes.append(process)
    line = read_line(process)
    assert line.startswith("simulated meter on /dev/")
    wait_for(link.is_symlink)
    assert line == f"simulated meter on {os.readlink(link)} (link {link})"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0


def test_sigterm_exits_zero_and_removes_the_link(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """SIGTERM (and Ctrl+C) stop the simulator cleanly: status 0, symlink gone."""
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        link = tmp_path / f"meter-{stop_signal.name}"
        process = simulate("--link", str(link))
        processes.append(process)
        wait_for(link.is_symlink)
        process.send_signal(stop_signal)
        assert process.wait(timeout=TIMEOUT) == 0
        assert not link.is_symlink()
        assert process.stderr is not None
        assert b"telegrams written" in process.stderr.read()


def test_tcp_mode_serves_every_client(processes: list[subprocess.Popen[bytes]]) -> None:
    """--tcp on a free port: clients get telegrams; one leaving does not disturb the other."""
    process = simulate("--tcp", "127.0.0.1:0", "--interval", "0.2", "--no-water")
    processes.append(process)
    line = read_line(process)
    assert line.startswith("simulated meter on socket://127.0.0.1:")
    port = int(line.rsplit(":", 1)[1])
    leaving = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    staying = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    with staying:
        first_telegram(lambda: leaving.recv(4096))
        leaving.close()
        telegram = first_telegram(lambda: staying.recv(4096))
        assert [device.name for device in telegram.mbus] == ["gas"]
        telegram = first_telegram(lambda: staying.recv(4096))
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0


def test_bad_arguments_are_usage_errors() -> None:
    """Nonsense options end with status 2 and one line of explanation."""
    for args in (["--interval", "0"], ["--count", "0"], ["--tcp", "host:port"],
                 ["--stdout", "--link", "x"], ["--start", "yesterday"]):  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "p1mqtt", "simulate", *args],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, args
        assert result.stderr.startswith(b"p1mqtt: "), result.stderr


def test_parse_tcp_address() -> None:
    """PORT, HOST:PORT and [IPv6]:PORT are understood; the host defaults to loopback."""
    assert parse_tcp_address("2000") == ("127.0.0.1", 2000)
    assert parse_tcp_address("192.0.2.7:23") == ("192.0.2.7", 23)
    assert parse_tcp_address("[::1]:8088") == ("::1", 8088)
    with pytest.raises(UsageError):
        parse_tcp_address("70000")


class FakeTime:
    """A monotonic clock and a stop flag whose waits move the clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = 100.0
        self.stopped = False

    def __call__(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return self.stopped

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None and timeout > 0
        self.now += timeout
        return self.stopped


def test_pacer_does_not_drift_and_skips_missed_ticks() -> None:
    """Ticks fall on origin + k * period however long the work takes; long stalls skip ticks."""
    fake = FakeTime()
    pacer = Pacer(0.5, delay_first=True, clock=fake)
    sent_at = []
    tick = 0
    for _ in range(5):
        due = pacer.wait(tick, fake)
        assert due is not None
        sent_at.append(fake.now)
        fake.now += 0.123  # time spent producing and writing the telegram
        tick = due + 1
    assert sent_at == [100.5, 101.0, 101.5, 102.0, 102.5]
    fake.now += 10.0  # the machine was suspended
    due = pacer.wait(tick, fake)
    assert (due, pacer.skipped) == (24, 19)  # sent at once: 0.123 s late, less than a period
    assert fake.now == pytest.approx(112.623)
    assert pacer.wait(25, fake) == 25
    assert fake.now == pytest.approx(113.0)  # back on the original grid
    fake.stopped = True
    assert pacer.wait(26, fake) is None


def test_pty_meter_never_blocks_without_a_reader(tmp_path: Path) -> None:
    """Nobody reading: writes return at once, stale data is discarded, a late reader decodes."""
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    telegrams = list(stream(SimulatedMeter(start=start), start, 101))
    with PtyMeter(tmp_path / "meter") as pty:
        assert os.readlink(tmp_path / "meter") == pty.path
        began = time.monotonic()
        for data in telegrams[:100]:
            pty.write(data)
        assert time.monotonic() - began < 5
        assert pty.discarded + pty.dropped > 0
        with serial.Serial(pty.path, timeout=0.5) as port:
            pty.write(telegrams[100])
            telegram = first_telegram(lambda: port.read(4096))
        assert telegram.raw == telegrams[100]
    assert not (tmp_path / "meter").is_symlink()


def test_pty_meter_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    """--link never clobbers a file that is not a symlink."""
    target = tmp_path / "meter"
    target.write_text("precious")
    with pytest.raises(UsageError):
        PtyMeter(target).start()
    assert target.read_text() == "precious"


def test_tcp_meter_forgets_clients_that_leave() -> None:
    """A client that disconnects is dropped; writing on never raises."""
    with TcpMeter("127.0.0.1", 0) as server:
        host, port = server.address
        assert server.url == f"socket://{host}:{port}"
        client = socket.create_connection((host, port), timeout=TIMEOUT)

        def accepted(count: int) -> Callable[[], bool]:
            def check() -> bool:
                server.poll(0.05)
                return server.clients == count

            return check

        wait_for(accepted(1))
        assert server.write(b"/telegram\r\n")
        assert client.recv(100) == b"/telegram\r\n"
        client.close()
        wait_for(accepted(0))
        assert not server.write(b"/nobody\r\n")


def test_tcp_meter_drops_whole_telegrams_for_a_client_that_does_not_read() -> None:
    """A stalled client gets whole telegrams dropped instead of blocking everyone."""
    with TcpMeter("127.0.0.1", 0, max_pending=256 * 1024) as server:
        client = socket.create_connection(server.address, timeout=TIMEOUT)
        with client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            server.poll(TIMEOUT)
            chunk = b"x" * 65536
            began = time.monotonic()
            for _ in range(1000):
                server.write(chunk)
                if server.dropped:
                    break
            assert server.dropped > 0
            assert time.monotonic() - began < 10
            assert server.clients == 1
