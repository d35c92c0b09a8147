"""A pseudo-terminal standing in for the meter's serial port, behind a stable symlink.

The bridge opens ``path`` (a symlink, like ``/dev/serial/by-id/...``) exactly as it opens a USB
cable; the test writes telegrams into the master side. ``unplug()`` closes the terminal and
removes the link (reads fail as on a USB unplug); ``replug()`` creates a new terminal behind the
same path, as udev does when the cable comes back.
"""

import os
import threading
import time
import tty
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PtyMeter"]


class PtyMeter:
    """A pty pair whose slave side is reachable through ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._master = -1
        self._slave = -1
        self.replug()

    @property
    def device(self) -> str:
        """The current /dev/pts/N behind ``path``."""
        return os.readlink(self.path)

    def replug(self) -> None:
        """Create a new terminal and point ``path`` at it."""
        self._master, self._slave = os.openpty()
        # Raw mode from the start: in cooked mode the line discipline would turn CR into LF
        # before the reader had configured the port, and every CRC would fail.
        tty.setraw(self._slave)
        temporary = self.path.with_suffix(".new")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(os.ttyname(self._slave))
        temporary.replace(self.path)

    def opened_by(self, pid: int) -> bool:
        """Whether process ``pid`` has the current terminal open."""
        device = self.device
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return False
        for fd in descriptors:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == device:
                    return True
            except OSError:
                continue
        return False

    def wait_opened_by(self, pid: int, timeout: float = 15.0) -> None:
        """Wait until process ``pid`` opened the terminal (opening flushes its input)."""
        deadline = time.monotonic() + timeout
        while not self.opened_by(pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"process {pid} did not open {self.path} in {timeout} s")
            threading.Event().wait(0.02)

    @contextmanager
    def streaming(self, telegrams: Sequence[bytes], interval: float = 0.3) -> Iterator[None]:
        """Send ``telegrams`` one after another, cycling, every ``interval`` s, like a meter,
        until the block ends.

        For a reader in another process: it opens the port (and pyserial flushes what waits
        there) at a moment the test cannot observe exactly, so a single telegram written just
        then may be lost; a meter repeats itself, and so does this.
        """
        stop = threading.Event()

        def send() -> None:
            index = 0
            while not stop.is_set():
                self.write(telegrams[index % len(telegrams)])
                index += 1
                stop.wait(interval)

        writer = threading.Thread(target=send, name="pty-meter")
        writer.start()
        try:
            yield
        finally:
            stop.set()
            writer.join()

    def write(self, data: bytes) -> None:
        """Send bytes as the meter would."""
        view = memoryview(data)
        while view:
            written = os.write(self._master, view)
            view = view[written:]

    def unplug(self) -> None:
        """Make the port vanish: close both sides and remove the link."""
        self.path.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def close(self) -> None:
        """Release everything."""
        self.unplug()
