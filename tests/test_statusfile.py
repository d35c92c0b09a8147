"""The status file the bridge keeps, and how ``health`` judges it."""

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from p1mqtt.statusfile import (
    RunStatus,
    StatusFile,
    StatusFileError,
    evaluate,
    pid_alive,
)

NOW = 1_800_000_000.0


def status(**changes: object) -> RunStatus:
    """A healthy status at NOW, with some fields changed."""
    values: dict[str, object] = {
        "pid": 4242,
        "started_at": NOW - 3600,
        "updated_at": NOW - 1,
        "last_telegram_at": NOW - 2,
        "broker_connected": True,
        "port_state": "open",
        "telegrams_decoded": 3600,
        "version": "0.1.0",
    }
    values.update(changes)
    return RunStatus(**values)  # type: ignore[arg-type]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def alive(_pid: int) -> bool:
    """Every process exists."""
    return True


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    """What is written is read back unchanged."""
    file = StatusFile(tmp_path / "status.json")
    assert file.write(status())
    assert file.load() == status()
    assert file.read() == status()


def test_write_is_atomic_and_readable_by_others(tmp_path: Path) -> None:
    """The file is replaced whole (no temporary file left) and is world-readable (0644)."""
    old_umask = os.umask(0o022)
    try:
        file = StatusFile(tmp_path / "state" / "status.json", min_interval=0)
        file.write(status(telegrams_decoded=1))
        file.write(status(telegrams_decoded=2))
    finally:
        os.umask(old_umask)
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["status.json"]
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o644
    loaded = file.load()
    assert loaded.telegrams_decoded == 2


def test_writes_are_throttled_unless_forced(tmp_path: Path) -> None:
    """Within min_interval a write is skipped; force writes anyway; later writes go through."""
    clock = FakeClock()
    file = StatusFile(tmp_path / "status.json", min_interval=5.0, clock=clock)
    assert file.write(status(telegrams_decoded=1))
    clock.now += 4.9
    assert not file.write(status(telegrams_decoded=2))
    assert file.load().telegrams_decoded == 1
    assert file.write(status(telegrams_decoded=3), force=True)
    clock.now += 5.0
    assert file.write(status(telegrams_decoded=4))
    assert file.load().telegrams_decoded == 4


def test_urgent_writes_come_soon_but_at_most_once_a_second(tmp_path: Path) -> None:
    """A change of state is written within a second, however often it flaps."""
    clock = FakeClock()
    file = StatusFile(tmp_path / "status.json", clock=clock)
    assert file.write(status(telegrams_decoded=1))
    clock.now += 0.5
    assert not file.due(urgent=True)
    assert not file.write(status(telegrams_decoded=2), urgent=True)
    clock.now += 0.5
    assert file.write(status(telegrams_decoded=3), urgent=True)
    clock.now += 1.0
    assert not file.write(status(telegrams_decoded=4))  # routine: every 15 s
    clock.now += 14.0
    assert file.write(status(telegrams_decoded=5))
    assert file.load().telegrams_decoded == 5


def test_write_failure_never_raises_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An unwritable location returns False with one warning, and the recovery is logged."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    file = StatusFile(blocker / "status.json", min_interval=0)
    with caplog.at_level(logging.INFO, logger="p1mqtt.statusfile"):
        assert not file.write(status())
        assert not file.write(status())
        blocker.unlink()
        assert file.write(status())
    messages = [record.getMessage() for record in caplog.records]
    assert sum("cannot write the status file" in message for message in messages) == 1
    assert any("written again" in message for message in messages)


def test_read_tolerates_missing_and_corrupt_files(tmp_path: Path) -> None:
    """read() gives None for a missing, non-JSON, incomplete or mistyped file."""
    path = tmp_path / "status.json"
    file = StatusFile(path)
    assert file.read() is None
    for text in ("{not json", "[]", '{"pid": 1}', status().to_json().replace("4242", '"x"')):
        path.write_text(text)
        assert file.read() is None


def test_load_says_what_is_wrong(tmp_path: Path) -> None:
    """load() raises FileNotFoundError when absent and StatusFileError naming the problem."""
    path = tmp_path / "status.json"
    with pytest.raises(FileNotFoundError):
        StatusFile(path).load()
    path.write_text('{"pid": 1}')
    with pytest.raises(StatusFileError, match="missing 'started_at'"):
        StatusFile(path).load()
    path.write_text(status().to_json().replace("true", '"yes"'))
    with pytest.raises(StatusFileError, match="wrong type for broker_connected"):
        StatusFile(path).load()
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(StatusFileError):
        StatusFile(path).load()


class Figures:
    """The health controller's figures, as the bridge has them."""

    telegrams_decoded = 7
    last_telegram: float | None = 995.0
    port_state = "open"
    broker_state = "connected"


def test_from_health_converts_monotonic_to_wall_clock() -> None:
    """The last telegram's monotonic time becomes wall-clock time; broker state becomes a bool."""
    figures = Figures()
    result = RunStatus.from_health(
        figures, started_at=NOW - 60, wall=NOW, monotonic=1000.0, pid=12, version="9"
    )
    assert result == RunStatus(12, NOW - 60, NOW, NOW - 5.0, True, "open", 7, "9")
    figures.last_telegram = None
    figures.broker_state = "disconnected: connection refused"
    result = RunStatus.from_health(figures, started_at=NOW, wall=NOW, monotonic=1000.0)
    assert result.last_telegram_at is None
    assert not result.broker_connected
    assert result.pid == os.getpid()


def test_evaluate_healthy() -> None:
    """A recent telegram and a connected broker are healthy."""
    assert evaluate(status(), NOW, 60, alive) == (
        True,
        "ok: last telegram 2 s ago, broker connected",
    )


def test_evaluate_absent() -> None:
    """No status means not running, naming the file looked for."""
    assert evaluate(None, NOW, 60, alive, path=Path("/data/status.json")) == (
        False,
        "not running (no status file at /data/status.json)",
    )


def test_evaluate_process_gone() -> None:
    """A status whose process has exited is not running."""
    healthy, reason = evaluate(status(), NOW, 60, lambda pid: False)
    assert not healthy
    assert reason == "not running: process 4242 has exited (status last updated 1 s ago)"


def test_evaluate_stale_status() -> None:
    """A status not updated for longer than max_age means a hung or dead bridge."""
    assert evaluate(status(updated_at=NOW - 90), NOW, 60, alive) == (
        False,
        "not running: status not updated for 90 s",
    )


def test_evaluate_silent_meter() -> None:
    """No telegram within max_age fails, naming the port's state when it is not open."""
    assert evaluate(status(last_telegram_at=NOW - 75), NOW, 60, alive) == (
        False,
        "no telegram for 75 s",
    )
    closed = status(last_telegram_at=NOW - 75, port_state="closed: permission denied")
    assert evaluate(closed, NOW, 60, alive)[1] == (
        "no telegram for 75 s (port: closed: permission denied)"
    )


def test_evaluate_no_telegram_yet() -> None:
    """Before the first telegram the reason says how long it has been running."""
    young = status(last_telegram_at=None, started_at=NOW - 10)
    assert evaluate(young, NOW, 60, alive) == (False, "no telegram yet (started 10 s ago)")
    old = status(last_telegram_at=None, started_at=NOW - 600)
    assert evaluate(old, NOW, 60, alive) == (False, "no telegram for 600 s since the start")


def test_evaluate_broker_disconnected() -> None:
    """Telegrams without a broker connection are unhealthy."""
    assert evaluate(status(broker_connected=False), NOW, 60, alive) == (
        False,
        "not connected to the broker",
    )


def test_pid_alive() -> None:
    """This process exists; an exited child and non-positive ids do not."""
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    assert not pid_alive(child.pid)
    assert not pid_alive(0)
    assert not pid_alive(-1)
