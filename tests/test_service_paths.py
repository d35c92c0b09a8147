"""Where the status file lives, per platform and environment."""

from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from p1mqtt.paths import (
    data_dir_candidates,
    data_dir_for,
    default_data_dir,
    service_data_dir_for,
)


def test_state_directory_wins_everywhere() -> None:
    """$STATE_DIRECTORY (systemd, the Docker image, the Windows service) overrides the rest."""
    env = {"STATE_DIRECTORY": "/var/lib/p1mqtt", "XDG_STATE_HOME": "/x", "HOME": "/home/a"}
    assert data_dir_for(env, "linux") == PurePosixPath("/var/lib/p1mqtt")
    assert data_dir_for({"STATE_DIRECTORY": "/data"}, "darwin") == PurePosixPath("/data")
    windows = {"STATE_DIRECTORY": "C:\\ProgramData\\p1mqtt", "LOCALAPPDATA": "C:\\L"}
    assert data_dir_for(windows, "win32") == PureWindowsPath("C:\\ProgramData\\p1mqtt")


def test_several_state_directories_use_the_first() -> None:
    """systemd joins several StateDirectory= entries with ':'."""
    env = {"STATE_DIRECTORY": "/var/lib/p1mqtt:/var/lib/other"}
    assert data_dir_for(env, "linux") == PurePosixPath("/var/lib/p1mqtt")


def test_linux_and_macos_follow_xdg() -> None:
    """$XDG_STATE_HOME/p1mqtt when absolute, else ~/.local/state/p1mqtt."""
    assert data_dir_for({"XDG_STATE_HOME": "/s", "HOME": "/home/a"}, "linux") == PurePosixPath(
        "/s/p1mqtt"
    )
    assert data_dir_for({"XDG_STATE_HOME": "rel", "HOME": "/home/a"}, "linux") == PurePosixPath(
        "/home/a/.local/state/p1mqtt"
    )
    assert data_dir_for({"HOME": "/Users/b"}, "darwin") == PurePosixPath(
        "/Users/b/.local/state/p1mqtt"
    )


def test_windows_user_and_service() -> None:
    """%LOCALAPPDATA%\\p1mqtt for a user, %PROGRAMDATA%\\p1mqtt for the service."""
    env = {"LOCALAPPDATA": "C:\\Users\\a\\AppData\\Local", "PROGRAMDATA": "D:\\PD"}
    assert data_dir_for(env, "win32") == PureWindowsPath("C:\\Users\\a\\AppData\\Local\\p1mqtt")
    assert data_dir_for(env, "win32", service=True) == PureWindowsPath("D:\\PD\\p1mqtt")
    assert data_dir_for({}, "win32", service=True) == PureWindowsPath("C:\\ProgramData\\p1mqtt")
    assert data_dir_for({"USERPROFILE": "C:\\Users\\b"}, "win32") == PureWindowsPath(
        "C:\\Users\\b\\AppData\\Local\\p1mqtt"
    )


def test_service_directories() -> None:
    """The installed service keeps its state in /var/lib/p1mqtt or %PROGRAMDATA%\\p1mqtt."""
    assert service_data_dir_for({}, "linux") == PurePosixPath("/var/lib/p1mqtt")
    assert service_data_dir_for({"PROGRAMDATA": "E:\\P"}, "win32") == PureWindowsPath(
        "E:\\P\\p1mqtt"
    )


def test_candidates_are_own_then_service_without_duplicates() -> None:
    """health looks in the user's directory, then the service's; never twice in one place."""
    assert data_dir_candidates({"HOME": "/home/a"}, "linux") == [
        PurePosixPath("/home/a/.local/state/p1mqtt"),
        PurePosixPath("/var/lib/p1mqtt"),
    ]
    assert data_dir_candidates({"STATE_DIRECTORY": "/var/lib/p1mqtt"}, "linux") == [
        PurePosixPath("/var/lib/p1mqtt")
    ]


def test_default_data_dir_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """default_data_dir() is a concrete Path from os.environ unless given a mapping."""
    monkeypatch.setenv("STATE_DIRECTORY", "/tmp/p1state")
    assert default_data_dir() == Path("/tmp/p1state")
    assert default_data_dir({"STATE_DIRECTORY": "/elsewhere"}) == Path("/elsewhere")
