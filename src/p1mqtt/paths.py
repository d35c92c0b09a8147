"""Where p1mqtt keeps its state (the status file), per platform; pure apart from reading env.

One override works everywhere: ``$STATE_DIRECTORY``. systemd sets it for a unit with
``StateDirectory=``, the Docker image sets it to ``/data``, and the Windows service sets it to
``%PROGRAMDATA%\\p1mqtt`` before it starts the bridge. Without it, an interactive user gets a
per-user directory (XDG on Linux and macOS, ``%LOCALAPPDATA%`` on Windows).
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

__all__ = [
    "APP_DIR_NAME",
    "STATE_DIRECTORY_ENV",
    "data_dir_candidates",
    "data_dir_for",
    "default_data_dir",
    "service_data_dir_for",
]

APP_DIR_NAME = "p1mqtt"
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"
"""Set by systemd (``StateDirectory=``), the Docker image and the Windows service."""

_LINUX_SERVICE_DIR = PurePosixPath("/var/lib") / APP_DIR_NAME
_WINDOWS_PROGRAMDATA = "C:\\ProgramData"


def data_dir_for(env: Mapping[str, str], platform: str, *, service: bool = False) -> PurePath:
    """The data directory for ``platform`` (a ``sys.platform`` value) and environment ``env``.

    ``service`` picks the machine-wide directory a Windows service uses (``%PROGRAMDATA%``)
    rather than the user's own; on other platforms the service gets ``$STATE_DIRECTORY``.
    """
    state_directory = env.get(STATE_DIRECTORY_ENV, "")
    if state_directory:
        # systemd joins several StateDirectory= entries with ':'; ours is the first.
        first = state_directory.split(";" if platform == "win32" else ":")[0]
        return _pure(platform)(first)
    if platform == "win32":
        if service:
            return service_data_dir_for(env, platform)
        local = env.get("LOCALAPPDATA", "")
        if local:
            return PureWindowsPath(local) / APP_DIR_NAME
        profile = env.get("USERPROFILE", "") or "C:\\Users\\Default"
        return PureWindowsPath(profile) / "AppData" / "Local" / APP_DIR_NAME
    xdg = env.get("XDG_STATE_HOME", "")
    # The XDG spec says a relative path is invalid and must be ignored.
    if xdg and PurePosixPath(xdg).is_absolute():
        return PurePosixPath(xdg) / APP_DIR_NAME
    home = env.get("HOME", "") or "/"
    return PurePosixPath(home) / ".local" / "state" / APP_DIR_NAME


def service_data_dir_for(env: Mapping[str, str], platform: str) -> PurePath:
    """Where the installed service keeps its state: ``/var/lib/p1mqtt`` or ``%PROGRAMDATA%``."""
    if platform == "win32":
        return PureWindowsPath(env.get("PROGRAMDATA", "") or _WINDOWS_PROGRAMDATA) / APP_DIR_NAME
    return _LINUX_SERVICE_DIR


def data_dir_candidates(env: Mapping[str, str], platform: str) -> list[PurePath]:
    """Where a status file may be, most specific first, without duplicates.

    ``p1mqtt health`` run by an administrator looks in its own data directory first, then in
    the installed service's one (which has no ``$STATE_DIRECTORY`` in the admin's shell).
    """
    candidates: list[PurePath] = []
    for path in (data_dir_for(env, platform), service_data_dir_for(env, platform)):
        if path not in candidates:
            candidates.append(path)
    return candidates


def default_data_dir(env: Mapping[str, str] | None = None, *, service: bool = False) -> Path:
    """The data directory on this machine (``env`` defaults to ``os.environ``)."""
    return Path(data_dir_for(os.environ if env is None else env, sys.platform, service=service))


def _pure(platform: str) -> type[PurePath]:
    return PureWindowsPath if platform == "win32" else PurePosixPath
