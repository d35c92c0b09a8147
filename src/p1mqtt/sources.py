"""The meter's edge: open a serial device or a pyserial URL, read bytes, reopen on faults.

Works for USB P1 cables (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``, ``COM3``), network P1
dongles (``socket://host:port``) and RFC 2217 servers (``rfc2217://host:port``), through
pyserial's ``serial_for_url``. Every failure becomes one :class:`~p1mqtt.errors.SourceError`
whose message says what happened and what to do about it.
"""

import contextlib
import errno
import logging
import os
import random
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, cast

import serial

from p1mqtt.errors import SourceError
from p1mqtt.faultlog import FaultLog

__all__ = ["PortReader", "PortSettings", "describe_port_error", "open_port"]

logger = logging.getLogger(__name__)

_DEVICE_POLL = 0.5
"""Seconds between two looks for a missing device while backing off."""
INTERRUPTIBLE_READ_TIMEOUT = 5.0
"""Longest a read of an interruptible port waits (see :class:`PortReader`): :meth:`PortReader.
interrupt` ends it at once, so this only bounds the wait should a stop go unannounced."""
_CHUNK = 4096
"""Most bytes taken from a device in one read: a terminal's buffer holds 4 kB at most, a
telegram 0.5 to 2 kB."""
_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}
_POSIX_READ = serial.Serial.read


class SerialPort(Protocol):
    """What the reader needs of an open pyserial port (device, socket or RFC 2217)."""

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read without blocking."""

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes, waiting at most the port's timeout."""

    def close(self) -> None:
        """Close the port."""


@dataclass(frozen=True, slots=True)
class PortSettings:
    """How to open the meter's port."""

    port: str
    baudrate: int = 115200
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    read_timeout: float = 0.5
    """Longest a read blocks, which bounds how fast a stop request is noticed (each timeout
    is a wake-up of an idle reader, so not much shorter). Not for the bridge's serial devices
    on POSIX, whose reads are interrupted instead (``PortReader(interruptible=True)``)."""
    reopen_delay_min: float = 1.0
    reopen_delay_max: float = 30.0

    @property
    def is_url(self) -> bool:
        """Whether ``port`` is a pyserial URL (network dongle) rather than a device."""
        return "://" in self.port


def describe_port_error(port: str, error: BaseException) -> str:
    """One sentence for people: what went wrong with ``port`` and what to do about it."""
    code = getattr(error, "errno", None)
    text = str(error)
    if "://" in port:
        if code == errno.ECONNREFUSED or "refused" in text.lower():
            return (
                f"network P1 dongle {port}: connection refused: check the dongle's address and "
                "port, and that it is powered and serving P1 data"
            )
        if "timed out" in text.lower() or code in (errno.ETIMEDOUT, errno.EHOSTUNREACH):
            return f"network P1 dongle {port}: unreachable ({text}); check the network and address"
        if "Name or service not known" in text or "nodename nor servname" in text:
            return f"network P1 dongle {port}: unknown host name; check the address"
        return f"network P1 dongle {port}: {text}"
    if code == errno.ENOENT or "No such file" in text or "FileNotFoundError" in text:
        return (
            f"serial port {port} not found: is the P1 cable plugged in? Prefer a stable "
            "name from /dev/serial/by-id/"
        )
    if code == errno.EACCES or "Permission denied" in text:
        return (
            f"serial port {port}: permission denied: add the user to the dialout group "
            "(sudo usermod -aG dialout $USER, then log in again)"
        )
    if code == errno.EBUSY or "busy" in text.lower():
        return f"serial port {port} is busy: another program is reading it; stop that program"
    if (
        "readiness to read but returned no data" in text
        or "Input/output error" in text
        or code == errno.EIO
    ):
        return f"serial port {port} disconnected (cable unplugged?)"
    return f"serial port {port}: {text}"


def open_port(settings: PortSettings) -> SerialPort:
    """Open the port; raise :class:`SourceError` with an actionable message on failure."""
    try:
        port = serial.serial_for_url(
            settings.port,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=_PARITY[settings.parity],
            stopbits=settings.stopbits,
            timeout=settings.read_timeout,
            do_not_open=True,
        )
        port.open()
    except (serial.SerialException, OSError, ValueError) as error:
        raise SourceError(describe_port_error(settings.port, error)) from error
    return cast(SerialPort, port)


def read_available(port: SerialPort, name: str, *, wait: bool = True) -> bytes:
    """Read what the port has; when it has nothing, wait at most its timeout for a byte (or,
    with ``wait=False``, return nothing at once). Raise SourceError when the port died."""
    try:
        waiting = port.in_waiting
        if waiting > 0:
            return port.read(waiting)
        if not wait:
            return b""
        first = port.read(1)
        # Woken by the first byte of a telegram: take what arrived with it in the same call.
        waiting = port.in_waiting if first else 0
        return first + port.read(waiting) if waiting > 0 else first
    except (serial.SerialException, OSError) as error:
        raise SourceError(describe_port_error(name, error)) from error


class _WakePipe:
    """Waits for a device's data or for :meth:`wake`, whichever comes first.

    One ``select`` on the device and a pipe, then one ``read`` of all the device holds: the
    cheapest wait there is, and the one pyserial's own ``read`` makes (with a ``Timeout``
    object, a loop and an ``in_waiting`` ioctl around it, per call). A wake-up sent while
    nobody waits is seen by the next wait, which returns at once. ``select``, not ``poll``:
    macOS's ``poll`` does not work on terminal devices.
    """

    def __init__(self) -> None:
        self._read_end, self._write_end = os.pipe()
        os.set_blocking(self._read_end, False)
        os.set_blocking(self._write_end, False)

    def wake(self) -> None:
        """End the current or the next :meth:`read` (from any thread, before :meth:`close`)."""
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already
            os.write(self._write_end, b"\0")

    def read(self, fd: int, name: str, timeout: float) -> bytes:
        """What the device ``fd`` holds, once it holds something, or b"" after ``timeout``
        seconds or a wake-up. Raise SourceError when the device died."""
        try:
            ready, _, _ = select.select([fd, self._read_end], [], [], timeout)
        except (OSError, ValueError) as error:
            raise SourceError(describe_port_error(name, error)) from error
        if self._read_end in ready:
            self._drain()
        if fd not in ready:
            return b""
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return b""
        except OSError as error:
            raise SourceError(describe_port_error(name, error)) from error
        if not data:  # readable, yet nothing: a USB adapter that went away
            raise SourceError(describe_port_error(name, OSError(errno.EIO, "Input/output error")))
        return data

    def _drain(self) -> None:
        try:
            while os.read(self._read_end, 512):
                pass
        except BlockingIOError:
            return

    def close(self) -> None:
        """Release the pipe."""
        os.close(self._read_end)
        os.close(self._write_end)


class _Ended(Enum):
    """How reading an open port ended."""

    STOPPED = "stopped"
    REOPEN = "reopen requested"
    FAULT = "failed before delivering a byte"
    FAULT_AFTER_DATA = "failed after delivering data"


def _interruptible(port: SerialPort) -> serial.Serial | None:
    """The port when it is pyserial's POSIX serial device, a descriptor to wait on with
    ``select``; None for network URLs, on Windows (another class there) and for a port class
    with a ``read`` of its own (pyserial's ``spy://`` logs what it reads)."""
    if os.name == "posix" and isinstance(port, serial.Serial) and type(port).read is _POSIX_READ:
        return port
    return None


class PortReader:
    """Reads the port until stopped, reopening it with backoff whenever it fails.

    ``on_data(data, now)`` receives every chunk with the monotonic time it arrived;
    ``on_state(state)`` hears ``"open"`` or the error sentence whenever that changes. Run
    :meth:`run` in a thread of its own (the bridge) or in the main thread (``p1mqtt dump``).

    A read waits at most the port's ``read_timeout`` for data, so that a stop or a reopen
    request is noticed within it. With ``interruptible``, a serial device on POSIX is read with
    one ``select`` on it and a pipe and one ``read`` of what it holds, waiting up to
    :data:`INTERRUPTIBLE_READ_TIMEOUT`, and :meth:`interrupt` (which :meth:`request_reopen`
    calls) ends the wait at once through the pipe: an idle reader then does not wake twice a
    second, and a busy one makes two system calls per chunk instead of pyserial's six. Whoever
    sets the stop event must then call :meth:`interrupt` too, as the bridge does. Network
    dongles and Windows ports keep the short timeout either way.
    """

    def __init__(
        self,
        settings: PortSettings,
        on_data: Callable[[bytes, float], None],
        on_state: Callable[[str], None] | None = None,
        *,
        opener: Callable[[PortSettings], SerialPort] = open_port,
        interruptible: bool = False,
    ) -> None:
        self._settings = settings
        self._on_data = on_data
        self._on_state = on_state or (lambda _state: None)
        self._opener = opener
        self._interruptible = interruptible
        self._reopen = threading.Event()
        self._faults = FaultLog(logger)
        # The pipe that interrupt() writes to while run() runs; the lock keeps a wake-up from
        # reaching a pipe being closed (its descriptors could already be reused).
        self._wake_pipe: _WakePipe | None = None
        self._wake_lock = threading.Lock()
        self.opens = 0
        """How many times the port was opened (the first time included)."""

    def request_reopen(self) -> None:
        """Close and reopen the port at the next chance (the meter went silent)."""
        self._reopen.set()
        self.interrupt()

    def interrupt(self) -> None:
        """End a read waiting for data now, so the reader looks at its stop event and reopen
        request (from any thread; nothing happens when no interruptible read is open)."""
        with self._wake_lock:
            if self._wake_pipe is not None:
                self._wake_pipe.wake()

    def run(self, stop: threading.Event) -> None:
        """Read until ``stop`` is set."""
        wake_pipe = None
        if self._interruptible and os.name == "posix":
            try:
                wake_pipe = _WakePipe()
            except OSError as error:  # out of file descriptors: poll the port instead
                logger.warning("reading %s with timeouts: %s", self._settings.port, error)
        with self._wake_lock:
            self._wake_pipe = wake_pipe
        try:
            self._run(stop)
        finally:
            with self._wake_lock:
                self._wake_pipe = None
            if wake_pipe is not None:
                wake_pipe.close()

    def _run(self, stop: threading.Event) -> None:
        delay = self._settings.reopen_delay_min
        requested = False  # the port was last closed by request_reopen(), not by a fault
        while not stop.is_set():
            try:
                port = self._opener(self._settings)
            except SourceError as error:
                self._failed(str(error))
                requested = False
                delay = self._back_off_after_fault(delay, stop)
                continue
            self.opens += 1
            self._faults.resolved("port faults", f"port {self._settings.port} is open again")
            self._on_state("open")
            # A silent meter is reopened every stale_after seconds for as long as it stays
            # silent, and the service already logged the silence once: no line per reopen.
            level = logging.DEBUG if requested else logging.INFO
            logger.log(level, "reading P1 data from %s", self._settings.port)
            ended = self._read_port(port, stop)
            requested = ended is _Ended.REOPEN
            if ended is _Ended.FAULT:
                # Opened, then failed before a single byte (a hung-up terminal, a dongle that
                # drops every connection): wait as after a failed open instead of spinning.
                delay = self._back_off_after_fault(delay, stop)
            else:
                delay = self._settings.reopen_delay_min

    def _read_port(self, port: SerialPort, stop: threading.Event) -> _Ended:
        """Read an open port until it ends, then close it."""
        try:
            return self._read_until_fault(port, stop)
        except SourceError as error:
            self._failed(str(error))
            return _Ended.FAULT
        finally:
            port.close()

    def _reading(self, port: SerialPort) -> Callable[[bool], bytes]:
        """``read(wait)`` for this port: what it holds, waiting for data only when asked."""
        name = self._settings.port
        wake_pipe = self._wake_pipe
        device = _interruptible(port) if wake_pipe is not None else None
        if wake_pipe is None or device is None:
            return lambda wait: read_available(port, name, wait=wait)
        try:
            fd = device.fileno()
        except (serial.SerialException, OSError) as error:
            raise SourceError(describe_port_error(name, error)) from error
        return lambda wait: wake_pipe.read(fd, name, INTERRUPTIBLE_READ_TIMEOUT if wait else 0.0)

    def _back_off_after_fault(self, delay: float, stop: threading.Event) -> float:
        """Wait about ``delay`` seconds (jittered); return the next, doubled, delay."""
        self._back_off(delay * random.uniform(0.8, 1.2), stop)  # noqa: S311 - jitter
        return min(delay * 2, self._settings.reopen_delay_max)

    def _back_off(self, seconds: float, stop: threading.Event) -> None:
        """Wait before the next attempt, but no longer once a missing device is back.

        A replugged USB cable reappears behind the same /dev/serial/by-id path; checking that
        path twice a second costs nothing and brings the data back within a second instead of
        after the full back-off (up to ``reopen_delay_max``).
        """
        path = self._settings.port
        if self._settings.is_url or os.path.exists(path):
            stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            if os.path.exists(path):
                return
            stop.wait(min(_DEVICE_POLL, max(0.0, deadline - time.monotonic())))

    def _read_until_fault(self, port: SerialPort, stop: threading.Event) -> _Ended:
        """Read until a fault, a stop or a reopen request."""
        self._reopen.clear()
        read = self._reading(port)
        delivered = False
        while not stop.is_set():
            reopen = self._reopen.is_set()
            try:
                data = read(not reopen)
            except SourceError as error:
                self._failed(str(error))
                return _Ended.FAULT_AFTER_DATA if delivered else _Ended.FAULT
            if data:
                delivered = True
                self._on_data(data, time.monotonic())
            elif reopen:
                # Only once what the port held is read: closing it would throw that away (the
                # rest of a telegram that began to arrive).
                self._reopen.clear()
                logger.debug("reopening %s", self._settings.port)
                return _Ended.REOPEN
        return _Ended.STOPPED

    def _failed(self, message: str) -> None:
        self._on_state(message)
        self._faults.fault("port faults", message, time.monotonic(), logging.ERROR)
