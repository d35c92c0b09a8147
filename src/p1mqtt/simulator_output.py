"""Where a simulated meter's telegrams go: a pseudo-terminal, TCP clients, or a byte stream.

Each sink has ``start()``, ``write(data) -> bool`` and ``close()`` (and works as a context
manager); none of them ever blocks on a reader that does not read:

* :class:`PtyMeter` creates a pseudo-terminal that readers open like a serial port
  (``/dev/pts/N``, optionally behind a symlink). Unread data is discarded once it exceeds a
  small backlog, as a UART would overrun, so a reader that attaches late sees fresh telegrams.
* :class:`TcpMeter` listens on a TCP port, like a network P1 dongle (``socket://host:port``
  for pyserial) and sends every telegram to every connected client.
* :class:`StreamMeter` writes to a binary file object such as standard output.

POSIX only for the pseudo-terminal; TCP and streams work everywhere.
"""

import errno
import logging
import os
import select
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from p1mqtt.errors import SourceError, UsageError

__all__ = ["MeterSink", "PtyMeter", "StreamMeter", "TcpMeter"]

logger = logging.getLogger(__name__)

_DISCONNECTED = (
    errno.EPIPE,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ENOTCONN,
    errno.ESHUTDOWN,
    errno.ETIMEDOUT,
)


class MeterSink(Protocol):
    """Something a simulated meter's telegrams can be written to."""

    def write(self, data: bytes) -> bool:
        """Send one telegram; ``False`` when it was dropped rather than delivered."""

    def close(self) -> None:
        """Stop and release everything the sink holds."""


class _Closing:
    """Context-manager support for sinks with ``start()`` and ``close()``."""

    def start(self) -> object:
        """Open the sink (a no-op for sinks that need no set-up)."""
        return None

    def close(self) -> None:
        """Release the sink."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class PtyMeter(_Closing):
    """A pseudo-terminal playing the meter's P1 port.

    Readers open :attr:`path` (or the symlink ``link``) as a serial port. The master side is
    written without blocking; when a reader leaves more than ``backlog`` bytes unread (or when
    nobody reads at all) the stale bytes are discarded before the next telegram, so the
    writer never blocks and a reader never starts with old data. :attr:`dropped` counts the
    telegrams that could not be written at all, :attr:`discarded` those thrown away unread.
    """

    def __init__(self, link: str | Path | None = None, *, backlog: int = 4096) -> None:
        if backlog < 0:
            raise UsageError(f"backlog must not be negative, not {backlog}")
        self.link = Path(link) if link is not None else None
        self.backlog = backlog
        self.dropped = 0
        self.discarded = 0
        self._master = -1
        self._slave = -1
        self._path: str | None = None
        self._linked = False

    @property
    def path(self) -> str:
        """The pseudo-terminal's device path, e.g. ``/dev/pts/5``."""
        if self._path is None:
            raise UsageError("PtyMeter.path: call start() first")
        return self._path

    def start(self) -> str:
        """Create the pseudo-terminal (raw, like a serial line) and the symlink; return the path."""
        if self._path is not None:
            return self._path
        try:
            import termios  # noqa: PLC0415 - POSIX only; importing here keeps the module portable
            import tty  # noqa: PLC0415
        except ImportError as error:  # pragma: no cover - Windows
            raise SourceError("pseudo-terminals need a POSIX system; use --tcp instead") from error
        try:
            self._master, self._slave = os.openpty()
        except OSError as error:
            raise SourceError(f"cannot create a pseudo-terminal: {error.strerror}") from error
        # Hold the slave side open: the terminal (and its raw settings) then persist while
        # readers come and go, and writes never fail with EIO between readers.
        tty.setraw(self._slave, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self._path = os.ttyname(self._slave)
        if self.link is not None:
            self._make_link(self.link, self._path)
        return self._path

    def _make_link(self, link: Path, target: str) -> None:
        if link.is_symlink() or not link.exists():
            temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
            try:
                temporary.unlink(missing_ok=True)
                temporary.symlink_to(target)
                temporary.replace(link)
            except OSError as error:
                self.close()
                raise SourceError(f"cannot create the symlink {link}: {error.strerror}") from error
            self._linked = True
        else:
            self.close()
            raise UsageError(f"refusing to replace {link}: it exists and is not a symlink")

    def write(self, data: bytes) -> bool:
        """Write one telegram; discard a stale backlog first; never block."""
        if self._master < 0:
            raise UsageError("PtyMeter.write: call start() first")
        unread = self._unread()
        if unread + len(data) > self.backlog:
            self._discard_unread(counted=unread > 0)
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        if written == len(data):
            return True
        # The terminal's buffers are full, so nobody reads (FIONREAD may still say 0: it only
        # sees what the kernel has already moved past its flip buffer). Discard, retry once.
        self._discard_unread(counted=True)
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        if written == len(data):
            return True
        self.dropped += 1
        return False

    def _unread(self) -> int:
        import fcntl  # noqa: PLC0415 - POSIX only
        import termios  # noqa: PLC0415

        buffer = bytearray(4)
        fcntl.ioctl(self._slave, termios.FIONREAD, buffer)
        return int.from_bytes(buffer, sys.byteorder)

    def _discard_unread(self, *, counted: bool) -> None:
        import termios  # noqa: PLC0415 - POSIX only

        if counted:
            self.discarded += 1
        termios.tcflush(self._slave, termios.TCIFLUSH)

    def close(self) -> None:
        """Remove the symlink (if it still points here) and close the pseudo-terminal."""
        if self._linked and self.link is not None:
            self._linked = False
            try:
                if os.readlink(self.link) == self._path:
                    self.link.unlink()
            except OSError as error:
                logger.warning("could not remove the symlink %s: %s", self.link, error.strerror)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1


class _Client:
    __slots__ = ("name", "pending", "sock")

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.pending = bytearray()


class TcpMeter(_Closing):
    """A TCP server playing a network P1 dongle: every client gets every telegram.

    Clients are accepted and dropped on :meth:`write` and :meth:`poll`; a client that does not
    keep up gets whole telegrams dropped (never half of one) once ``max_pending`` bytes are
    waiting for it. Connection errors never escape: the client is simply forgotten.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, max_pending: int = 64 * 1024
    ) -> None:
        self.host = host
        self.port = port
        self.max_pending = max_pending
        self.dropped = 0
        self._server: socket.socket | None = None
        self._clients: list[_Client] = []

    @property
    def address(self) -> tuple[str, int]:
        """The listening (host, port); the port is the real one when 0 was asked."""
        if self._server is None:
            raise UsageError("TcpMeter.address: call start() first")
        host, port = self._server.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """A pyserial URL for the server, ``socket://127.0.0.1:PORT``."""
        host, port = self.address
        return f"socket://[{host}]:{port}" if ":" in host else f"socket://{host}:{port}"

    @property
    def clients(self) -> int:
        """How many clients are connected."""
        return len(self._clients)

    def start(self) -> tuple[str, int]:
        """Listen; return the address."""
        if self._server is None:
            try:
                server = socket.create_server(
                    (self.host, self.port), family=_family(self.host), backlog=16
                )
            except OSError as error:
                raise SourceError(
                    f"cannot listen on {self.host}:{self.port}: {error.strerror}"
                ) from error
            server.setblocking(False)
            self._server = server
        return self.address

    def poll(self, timeout: float = 0.0) -> None:
        """Accept new clients and forget closed ones, waiting at most ``timeout`` seconds."""
        server = self._server
        if server is None:
            raise UsageError("TcpMeter.poll: call start() first")
        watched = [server, *(client.sock for client in self._clients)]
        readable, _, _ = select.select(watched, [], [], max(timeout, 0.0))
        for sock in readable:
            if sock is server:
                self._accept(server)
            else:
                self._read_and_discard(sock)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                sock, peer = server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                logger.warning("accepting a client failed: %s", error.strerror)
                return
            sock.setblocking(False)
            name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
            self._clients.append(_Client(sock, name))
            logger.info("client %s connected", name)

    def _read_and_discard(self, sock: socket.socket) -> None:
        client = next((c for c in self._clients if c.sock is sock), None)
        if client is None:
            return
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as error:
            self._drop(client, error.strerror or "error")
            return
        if not data:
            self._drop(client, "closed the connection")

    def write(self, data: bytes) -> bool:
        """Send one telegram to every client; ``False`` when no client got all of it queued."""
        self.poll(0.0)
        delivered = False
        for client in list(self._clients):
            if len(client.pending) + len(data) > self.max_pending:
                self.dropped += 1
            else:
                client.pending += data
                delivered = True
            self._flush(client)
        return delivered

    def _flush(self, client: _Client) -> None:
        while client.pending:
            try:
                sent = client.sock.send(client.pending, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno not in _DISCONNECTED:
                    logger.warning("client %s: %s", client.name, error.strerror)
                self._drop(client, error.strerror or "error")
                return
            del client.pending[:sent]

    def _drop(self, client: _Client, reason: str) -> None:
        logger.info("client %s dropped: %s", client.name, reason)
        if client in self._clients:
            self._clients.remove(client)
        client.sock.close()

    def close(self) -> None:
        """Disconnect every client and stop listening."""
        for client in self._clients:
            client.sock.close()
        self._clients.clear()
        if self._server is not None:
            self._server.close()
            self._server = None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class StreamMeter(_Closing):
    """Writes telegrams to a binary stream (standard output), flushing after each one.

    A reader that went away (``BrokenPipeError``) turns :attr:`closed` true and makes further
    writes return ``False``.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.closed = False

    def write(self, data: bytes) -> bool:
        """Write and flush one telegram."""
        if self.closed:
            return False
        try:
            self.stream.write(data)
            self.stream.flush()
        except BrokenPipeError:
            self.closed = True
            return False
        return True
