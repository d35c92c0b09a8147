"""A minimal sd_notify client: tell systemd we are ready, alive, stopping (no dependency).

The protocol is one datagram of ``KEY=value`` lines to the Unix socket named by
``$NOTIFY_SOCKET`` (``@name`` is a socket in the abstract namespace). With ``Type=notify`` and
``WatchdogSec=`` in the unit, systemd waits for ``READY=1`` and restarts the service when
``WATCHDOG=1`` stops coming. Outside systemd (no ``$NOTIFY_SOCKET``; Windows; Docker) every
method is a no-op. Sending never raises: a failure is logged once.
"""

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["Notifier"]

logger = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to systemd's notification socket, when there is one."""

    def __init__(self, env: Mapping[str, str] | None = None, *, pid: int | None = None) -> None:
        environ = os.environ if env is None else env
        self._pid = os.getpid() if pid is None else pid
        self._address = _socket_address(environ.get("NOTIFY_SOCKET", ""))
        self._watchdog = _watchdog_interval(environ, self._pid)
        self._last_ping: float | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notification socket we can use."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; True when sent, False if no-op or failed."""
        if self._address is None or not assignments:
            return False
        message = "\n".join(assignments).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self._address)
        except OSError as error:
            if not self._warned:
                logger.warning("cannot notify systemd through %r: %s", self._address, error)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup is complete (``READY=1``), optionally with a status line."""
        return self.notify("READY=1", *self._status_line(status))

    def watchdog(self) -> bool:
        """Still alive (``WATCHDOG=1``); must come at least every ``WatchdogSec``."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun (``STOPPING=1``)."""
        return self.notify("STOPPING=1", *self._status_line(status))

    def status(self, text: str) -> bool:
        """The one-line status ``systemctl status`` shows."""
        return self.notify(*self._status_line(text))

    def watchdog_interval(self) -> float | None:
        """Seconds systemd waits for a ping (``$WATCHDOG_USEC``), None when no watchdog is set.

        Meant for this process only: None when ``$WATCHDOG_PID`` names another one.
        """
        return self._watchdog

    def keepalive(self, now: float) -> bool:
        """Ping the watchdog when half its interval passed since the last ping (``now``: monotonic).

        Call it from the loop whose progress proves the service works; True when pinged.
        """
        if self._watchdog is None or self._address is None:
            return False
        if self._last_ping is not None and now - self._last_ping < self._watchdog / 2:
            return False
        self._last_ping = now
        return self.watchdog()

    @staticmethod
    def _status_line(text: str | None) -> tuple[str, ...]:
        if text is None:
            return ()
        return (f"STATUS={' '.join(text.split())}",)


def _socket_address(value: str) -> str | None:
    if not value or not hasattr(socket, "AF_UNIX"):
        return None
    if value.startswith("@"):
        return "\0" + value[1:]  # the abstract namespace (Linux)
    if value.startswith("/"):
        return value
    logger.debug("NOTIFY_SOCKET=%r is not a Unix socket address; not notifying systemd", value)
    return None


def _watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    watchdog_pid = env.get("WATCHDOG_PID", "")
    if watchdog_pid:
        try:
            if int(watchdog_pid) != pid:
                return None
        except ValueError:
            return None
    return usec / 1_000_000
