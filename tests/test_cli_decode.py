"""``p1mqtt decode``: in-process through ``cli.main`` and as a real ``python -m p1mqtt`` process."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from p1mqtt.cli import main
from telegrams import COMPOSED, fixture

GOOD = COMPOSED["be_two_gas"]
OTHER = COMPOSED["be_dst_autumn"]
BAD = fixture("ie_iskra_mie5t")
SRC = Path(__file__).resolve().parents[1] / "src"


class _Stdin:
    """A stand-in for sys.stdin with the binary ``buffer`` the command reads."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_decode_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One JSON line per telegram on stdout, nothing on stderr, exit 0."""
    path = _write(tmp_path, "capture.bin", GOOD + OTHER)
    assert main(["decode", path]) == 0
    out, err = capsys.readouterr()
    documents = _lines(out)
    assert [doc["objects"]["0-0:1.0.0"]["value"] for doc in documents] == [
        "2024-01-05T10:15:30+01:00",
        "2025-10-26T02:30:00+01:00",
    ]
    assert err == ""


def test_decode_stdin_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without files the command reads standard input."""
    monkeypatch.setattr(sys, "stdin", _Stdin(GOOD))
    assert main(["decode"]) == 0
    assert len(_lines(capsys.readouterr().out)) == 1


def test_decode_dash_is_stdin_between_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """'-' among files reads standard input at that place; output follows argument order."""
    first = _write(tmp_path, "first.txt", GOOD)
    last = _write(tmp_path, "last.txt", fixture("nl_kaifa_dsmr42"))
    monkeypatch.setattr(sys, "stdin", _Stdin(OTHER))
    assert main(["decode", first, "-", last]) == 0
    documents = _lines(capsys.readouterr().out)
    assert [doc["header"] for doc in documents] == [
        "FLU5\\253769484_A",
        "FLU5\\253769484_A",
        "KFM5KAIFA-METER",
    ]
    assert [doc["objects"]["0-0:1.0.0"]["value"] for doc in documents[:2]] == [
        "2024-01-05T10:15:30+01:00",
        "2025-10-26T02:30:00+01:00",
    ]


def test_rejected_frame_on_stderr_with_file_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rejected telegram is reported on stderr with file name and byte offset; exit 1."""
    path = _write(tmp_path, "mixed.txt", GOOD + BAD + OTHER)
    assert main(["decode", path]) == 1
    out, err = capsys.readouterr()
    assert len(_lines(out)) == 2
    assert (
        err
        == f"{path}: byte {len(GOOD)}: rejected: CRC mismatch: telegram says AD3B, computed F2A8\n"
    )


def test_stdin_rejection_named_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rejections from standard input are reported as <stdin>."""
    monkeypatch.setattr(sys, "stdin", _Stdin(b"xx" + GOOD[:100]))
    assert main(["decode", "-"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("<stdin>: byte 2: rejected: incomplete telegram")


def test_missing_file_reported_and_others_decoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file is reported on stderr, the other files are still decoded, exit 1."""
    good = _write(tmp_path, "good.txt", GOOD)
    missing = str(tmp_path / "missing.txt")
    assert main(["decode", missing, good]) == 1
    out, err = capsys.readouterr()
    assert len(_lines(out)) == 1
    assert err == f"p1mqtt decode: {missing}: No such file or directory\n"


def test_empty_input_is_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty file decodes to nothing and exits 0."""
    assert main(["decode", _write(tmp_path, "empty.txt", b"")]) == 0
    assert capsys.readouterr() == ("", "")


def test_unknown_timezone_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --timezone exits 2 with a one-line message, no traceback."""
    assert main(["decode", "--timezone", "Mars/Olympus"]) == 2
    assert capsys.readouterr().err == "p1mqtt: unknown time zone 'Mars/Olympus'\n"


def test_timezone_option_applies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--timezone sets the zone used for timestamps without S/W."""
    path = _write(tmp_path, "iskra.txt", COMPOSED["be_iskra_wallonia"])
    assert main(["decode", "--timezone", "UTC", path]) == 0
    (document,) = _lines(capsys.readouterr().out)
    assert document["objects"]["0-0:1.0.0"]["value"] == "2026-01-15T20:10:09+00:00"


def test_no_subcommand_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """p1mqtt without a command prints help on stderr and exits 2."""
    assert main([]) == 2
    assert "decode" in capsys.readouterr().err


# --- as a separate process ----------------------------------------------------------------------


def _run(
    args: list[str], data: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "p1mqtt", "decode", *args],
        input=data,
        capture_output=True,
        check=False,
        timeout=60,
        env=env,
        cwd=cwd,
    )


def test_process_reads_stdin(tmp_path: Path) -> None:
    """python -m p1mqtt decode < capture prints JSON lines and exits 0."""
    result = _run([], GOOD + OTHER, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(_lines(result.stdout.decode())) == 2
    assert result.stderr == b""


def test_process_files_and_rejections(tmp_path: Path) -> None:
    """Files in order; a bad frame is named on stderr with its offset; exit status 1."""
    good = _write(tmp_path, "good.txt", GOOD)
    bad = _write(tmp_path, "bad.txt", b"noise" + BAD)
    result = _run([good, bad], cwd=tmp_path)
    assert result.returncode == 1
    assert len(_lines(result.stdout.decode())) == 1
    assert result.stderr.decode() == (
        f"{bad}: byte 5: rejected: CRC mismatch: telegram says AD3B, computed F2A8\n"
    )


def test_process_missing_file(tmp_path: Path) -> None:
    """A missing file gives exit 1 and a message, not a traceback."""
    result = _run([str(tmp_path / "nope.bin")], cwd=tmp_path)
    assert result.returncode == 1
    assert b"No such file or directory" in result.stderr
    assert b"Traceback" not in result.stderr
