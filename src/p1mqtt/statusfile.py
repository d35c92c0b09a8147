"""The status file a running bridge keeps in its data directory, and what ``health`` makes of it.

The bridge's health loop calls :meth:`StatusFile.write` as often as it likes; the file is
replaced atomically (a temporary file, then ``os.replace``) at most every ``min_interval``
seconds, so a reader never sees half a file. ``p1mqtt health`` (and Docker's HEALTHCHECK) reads
it with :meth:`StatusFile.load` and judges it with :func:`evaluate`, a pure function of the
status, the wall-clock time and whether the writer's process still exists.

Times in the file are wall-clock epoch seconds, because the reader is another process.
"""

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from p1mqtt import __version__

__all__ = [
    "DEFAULT_MAX_AGE",
    "STATUS_FILE_NAME",
    "HealthFigures",
    "RunStatus",
    "StatusFile",
    "StatusFileError",
    "evaluate",
    "pid_alive",
]

logger = logging.getLogger(__name__)

STATUS_FILE_NAME = "status.json"
DEFAULT_MAX_AGE = 60.0
"""Seconds without a telegram (or without a status update) before ``health`` fails."""
DEFAULT_MIN_INTERVAL = 15.0
"""Seconds between two routine writes of the file (few writes on a Raspberry Pi's SD card, and
well inside :data:`DEFAULT_MAX_AGE`); the bridge writes a change of state sooner (``urgent``)."""
URGENT_MIN_INTERVAL = 1.0
"""Seconds between two writes of urgent news (a state change): soon, but a port or a connection
that flaps cannot make the file be rewritten many times a second."""
_FORMAT = 1


class StatusFileError(ValueError):
    """The status file exists but cannot be read or understood; the message says why."""


@dataclass(frozen=True, slots=True)
class RunStatus:
    """What a running bridge reports about itself."""

    pid: int
    started_at: float
    """Wall-clock epoch seconds the bridge started."""
    updated_at: float
    """Wall-clock epoch seconds this status was taken."""
    last_telegram_at: float | None
    """Wall-clock epoch seconds of the last valid telegram, None before the first."""
    broker_connected: bool
    port_state: str
    """``open``, ``opening`` or the reason the port is closed."""
    telegrams_decoded: int
    version: str

    @classmethod
    def from_health(
        cls,
        health: "HealthFigures",
        *,
        started_at: float,
        wall: float,
        monotonic: float,
        pid: int | None = None,
        version: str | None = None,
    ) -> "RunStatus":
        """The status of a bridge from its health figures (whose times are monotonic).

        ``wall`` and ``monotonic`` are the two clocks read at the same moment; they convert the
        last telegram's monotonic time to wall-clock time.
        """
        last = health.last_telegram
        return cls(
            pid=os.getpid() if pid is None else pid,
            started_at=started_at,
            updated_at=wall,
            last_telegram_at=None if last is None else wall - (monotonic - last),
            broker_connected=health.broker_state == "connected",
            port_state=health.port_state,
            telegrams_decoded=health.telegrams_decoded,
            version=__version__ if version is None else version,
        )

    def to_json(self) -> str:
        """The file's content."""
        return json.dumps({"format": _FORMAT, **asdict(self)}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "RunStatus":
        """Parse the file's content; raise :class:`StatusFileError` saying what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise StatusFileError(f"not JSON ({error})") from error
        if not isinstance(data, dict):
            raise StatusFileError("not a JSON object")
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name not in data:
                raise StatusFileError(f"missing {field.name!r}")
            values[field.name] = data[field.name]
        _check_types(values)
        return cls(**values)


class HealthFigures(Protocol):
    """The part of :class:`p1mqtt.health.Health` a status is made from."""

    telegrams_decoded: int
    last_telegram: float | None
    port_state: str
    broker_state: str


def _check_types(values: dict[str, Any]) -> None:
    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    problems = [
        name
        for name, ok in (
            ("pid", isinstance(values["pid"], int) and not isinstance(values["pid"], bool)),
            ("started_at", number(values["started_at"])),
            ("updated_at", number(values["updated_at"])),
            (
                "last_telegram_at",
                values["last_telegram_at"] is None or number(values["last_telegram_at"]),
            ),
            ("broker_connected", isinstance(values["broker_connected"], bool)),
            ("port_state", isinstance(values["port_state"], str)),
            ("telegrams_decoded", isinstance(values["telegrams_decoded"], int)),
            ("version", isinstance(values["version"], str)),
        )
        if not ok
    ]
    if problems:
        raise StatusFileError(f"wrong type for {', '.join(problems)}")


class StatusFile:
    """``status.json`` in the data directory: written by the bridge, read by ``health``."""

    def __init__(
        self,
        path: Path,
        *,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._min_interval = min_interval
        self._clock = clock
        self._last_write: float | None = None
        self._failing = False

    def due(self, *, urgent: bool = False) -> bool:
        """Whether :meth:`write` would write now: ``min_interval`` passed since the last time
        (:data:`URGENT_MIN_INTERVAL` for ``urgent`` news); lets a caller skip building a status
        that would not be written."""
        last = self._last_write
        interval = URGENT_MIN_INTERVAL if urgent else self._min_interval
        return last is None or self._clock() - last >= interval

    def write(self, status: RunStatus, *, force: bool = False, urgent: bool = False) -> bool:
        """Replace the file with ``status`` unless it was written less than ``min_interval`` ago
        (:data:`URGENT_MIN_INTERVAL` when ``urgent``; whenever it is, with ``force``).

        Returns True when the file was written. Never raises for an I/O error: the bridge must
        not stop because its status cannot be saved; the first failure is logged as a warning,
        and the recovery once.
        """
        if not force and not self.due(urgent=urgent):
            return False
        self._last_write = self._clock()
        try:
            self._replace(status.to_json())
        except OSError as error:
            if not self._failing:
                logger.warning(
                    "cannot write the status file %s (p1mqtt health will report 'not running'): %s",
                    self.path,
                    error,
                )
                self._failing = True
            return False
        if self._failing:
            logger.info("status file %s written again", self.path)
            self._failing = False
        return True

    def _replace(self, text: str) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # 0644: the status holds nothing secret, and `p1mqtt health` may run as another user.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            descriptor = os.open(temporary, flags, 0o644)
        except FileNotFoundError:  # the directory is missing (first write, or it was removed)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, flags, 0o644)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def load(self) -> RunStatus:
        """Read the status; FileNotFoundError when absent, :class:`StatusFileError` when bad."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise StatusFileError(str(reason)) from error
        return RunStatus.from_json(text)

    def read(self) -> RunStatus | None:
        """The status, or None when the file is missing or unreadable (the reason is logged)."""
        try:
            return self.load()
        except FileNotFoundError:
            return None
        except StatusFileError as error:
            logger.debug("status file %s ignored: %s", self.path, error)
            return None


def evaluate(
    status: RunStatus | None,
    now: float,
    max_age: float,
    pid_alive: Callable[[int], bool],
    *,
    path: Path | None = None,
) -> tuple[bool, str]:
    """Judge a status at wall-clock time ``now``: (healthy, one line saying why).

    Healthy means the bridge is running, decoded a telegram in the last ``max_age`` seconds
    and is connected to the broker.
    """
    if status is None:
        where = f" at {path}" if path is not None else ""
        return False, f"not running (no status file{where})"
    since_update = max(0.0, now - status.updated_at)
    if not pid_alive(status.pid):
        return False, (
            f"not running: process {status.pid} has exited "
            f"(status last updated {since_update:.0f} s ago)"
        )
    if since_update > max_age:
        return False, f"not running: status not updated for {since_update:.0f} s"
    port = "" if status.port_state == "open" else f" (port: {status.port_state})"
    if status.last_telegram_at is None:
        running = max(0.0, now - status.started_at)
        if running > max_age:
            return False, f"no telegram for {running:.0f} s since the start{port}"
        return False, f"no telegram yet (started {running:.0f} s ago){port}"
    silence = max(0.0, now - status.last_telegram_at)
    if silence > max_age:
        return False, f"no telegram for {silence:.0f} s{port}"
    if not status.broker_connected:
        return False, "not connected to the broker"
    return True, f"ok: last telegram {silence:.0f} s ago, broker connected"


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists (on this machine, in this PID namespace)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user (the service's)
    return True


def _windows_pid_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    # os.kill(pid, 0) would *terminate* the process on Windows: ask the kernel instead.
    import ctypes  # noqa: PLC0415 - Windows only

    process_query_limited_information = 0x1000
    still_active = 259
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        # Access denied still means the process exists.
        return bool(ctypes.get_last_error() == 5)  # type: ignore[attr-defined,unused-ignore]
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)
