"""``p1mqtt health``: one line and exit status 0/1 from the running bridge's status file."""

import os
import re
import time
from pathlib import Path

import pytest

from p1mqtt.cli import main
from p1mqtt.commands.health import status_path
from p1mqtt.statusfile import RunStatus, StatusFile


def write_status(directory: Path, **changes: object) -> None:
    """A status file for this (live) process, fresh unless changed."""
    now = time.time()
    values: dict[str, object] = {
        "pid": os.getpid(),
        "started_at": now - 3600,
        "updated_at": now,
        "last_telegram_at": now - 2,
        "broker_connected": True,
        "port_state": "open",
        "telegrams_decoded": 3600,
        "version": "0.1.0",
    }
    values.update(changes)
    StatusFile(directory / "status.json").write(RunStatus(**values))  # type: ignore[arg-type]


def health(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run `p1mqtt health ARGS`; return the exit status and the single output line."""
    status = main(["health", *args])
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    return status, out.strip()


def test_fresh_status_is_healthy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A recent telegram and a connected broker: exit 0 and 'ok'."""
    write_status(tmp_path)
    status, line = health(capsys, "--data-dir", str(tmp_path))
    assert status == 0
    assert re.fullmatch(r"ok: last telegram \d+ s ago, broker connected", line)


def test_stale_status_is_unhealthy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A status not updated for longer than --max-age: exit 1, 'not running'."""
    write_status(tmp_path, updated_at=time.time() - 300)
    status, line = health(capsys, "--data-dir", str(tmp_path), "--max-age", "120")
    assert status == 1
    assert line.startswith("not running: status not updated for 3")


def test_silent_meter_is_unhealthy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No telegram within --max-age: exit 1, and the line says for how long."""
    write_status(tmp_path, last_telegram_at=time.time() - 90)
    status, line = health(capsys, "--data-dir", str(tmp_path), "--max-age", "30")
    assert status == 1
    assert line.startswith("no telegram for 9")


def test_absent_status_is_unhealthy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No status file: exit 1, naming the file it looked for."""
    status, line = health(capsys, "--data-dir", str(tmp_path))
    assert status == 1
    assert line == f"not running (no status file at {tmp_path / 'status.json'})"


def test_corrupt_status_is_unhealthy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable status file: exit 1 and the reason, never a traceback."""
    (tmp_path / "status.json").write_text("{truncated")
    status, line = health(capsys, "--data-dir", str(tmp_path))
    assert status == 1
    assert line.startswith(f"unknown: cannot read the status file {tmp_path / 'status.json'}: ")
    assert "not JSON" in line


def test_disconnected_broker_is_unhealthy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Telegrams but no broker: exit 1."""
    write_status(tmp_path, broker_connected=False)
    assert health(capsys, "--data-dir", str(tmp_path)) == (1, "not connected to the broker")


def test_max_age_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    """--max-age 0 is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["health", "--max-age", "0"])
    assert exit_info.value.code == 2
    assert "must be more than 0" in capsys.readouterr().err


def test_data_dir_defaults_to_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --data-dir, $STATE_DIRECTORY (systemd, Docker) is where the status is read."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    write_status(tmp_path)
    assert status_path() == tmp_path / "status.json"
    assert health(capsys)[0] == 0


def test_falls_back_to_the_service_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's own directory is read first, then the installed service's one."""
    own, service = tmp_path / "own", tmp_path / "service"
    monkeypatch.setattr(
        "p1mqtt.commands.health.data_dir_candidates", lambda env, platform: [own, service]
    )
    assert status_path() == own / "status.json"  # none exists: report the first
    write_status(service)
    assert status_path() == service / "status.json"
    write_status(own)
    assert status_path() == own / "status.json"
