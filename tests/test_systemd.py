"""The sd_notify client, against real Unix datagram sockets."""

import logging
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from p1mqtt.systemd import Notifier

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket playing systemd, and its path."""
    # A short directory: socket paths are limited to about 107 bytes.
    with tempfile.TemporaryDirectory(prefix="p1n") as directory:
        path = str(Path(directory) / "notify")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.settimeout(10)
        receiver.bind(path)
        try:
            yield receiver, path
        finally:
            receiver.close()


def test_ready_watchdog_stopping_and_status(notify_socket: tuple[socket.socket, str]) -> None:
    """Each call sends its assignment as one datagram."""
    receiver, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready()
    assert receiver.recv(4096) == b"READY=1"
    assert notifier.watchdog()
    assert receiver.recv(4096) == b"WATCHDOG=1"
    assert notifier.status("reading /dev/ttyUSB0\npublishing")
    assert receiver.recv(4096) == b"STATUS=reading /dev/ttyUSB0 publishing"
    assert notifier.stopping("stopping")
    assert receiver.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_ready_with_status_is_one_datagram(notify_socket: tuple[socket.socket, str]) -> None:
    """READY=1 and STATUS= travel together, newline-separated."""
    receiver, path = notify_socket
    Notifier({"NOTIFY_SOCKET": path}).ready("connected")
    assert receiver.recv(4096) == b"READY=1\nSTATUS=connected"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets: Linux only")
def test_abstract_namespace_socket() -> None:
    """'@name' addresses a socket in the abstract namespace."""
    name = f"p1mqtt-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.settimeout(10)
        receiver.bind("\0" + name)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert receiver.recv(4096) == b"READY=1"


def test_no_op_outside_systemd() -> None:
    """Without NOTIFY_SOCKET (or with an address that is not a Unix socket) nothing is sent."""
    for env in ({}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "vsock:2:1234"}):
        notifier = Notifier(env)
        assert not notifier.enabled
        assert not notifier.ready()
        assert not notifier.watchdog()
        assert not notifier.keepalive(0.0)


def test_send_errors_are_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A socket that is gone makes sends return False with one warning, never an exception."""
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing")})
    with caplog.at_level(logging.WARNING, logger="p1mqtt.systemd"):
        assert not notifier.ready()
        assert not notifier.watchdog()
    assert len(caplog.records) == 1
    assert "cannot notify systemd" in caplog.records[0].getMessage()


def test_watchdog_interval() -> None:
    """WATCHDOG_USEC gives seconds, for this process only."""
    pid = 321
    assert Notifier({"WATCHDOG_USEC": "60000000"}, pid=pid).watchdog_interval() == 60.0
    both = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "321"}
    assert Notifier(both, pid=pid).watchdog_interval() == 30.0
    other = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "999"}
    assert Notifier(other, pid=pid).watchdog_interval() is None
    for usec in ("", "0", "-5", "soon"):
        assert Notifier({"WATCHDOG_USEC": usec}, pid=pid).watchdog_interval() is None
    assert Notifier({"WATCHDOG_USEC": "1", "WATCHDOG_PID": "x"}).watchdog_interval() is None


def test_keepalive_pings_at_half_the_interval(notify_socket: tuple[socket.socket, str]) -> None:
    """keepalive() pings at once, then again only after half the watchdog interval."""
    receiver, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "60000000"})
    assert notifier.keepalive(1000.0)
    assert receiver.recv(4096) == b"WATCHDOG=1"
    assert not notifier.keepalive(1029.9)
    assert notifier.keepalive(1030.0)
    assert receiver.recv(4096) == b"WATCHDOG=1"


def test_keepalive_without_watchdog_does_nothing(notify_socket: tuple[socket.socket, str]) -> None:
    """With no WatchdogSec there is nothing to ping."""
    _, path = notify_socket
    assert not Notifier({"NOTIFY_SOCKET": path}).keepalive(0.0)
