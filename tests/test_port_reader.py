"""The port reader's loop, with a scripted port (the real ports are in test_serial_faults.py)."""

import os
import threading
import time
from pathlib import Path

import pytest
import serial

from meter_pty import PtyMeter
from mqtt_helpers import wait_until
from p1mqtt import sources
from p1mqtt.errors import SourceError
from p1mqtt.sources import PortReader, PortSettings, read_available


class ScriptedPort:
    """A port that returns its chunks one read at a time, then nothing; records its closing."""

    def __init__(self, chunks: list[bytes], on_read: "list[object]") -> None:
        self._chunks = list(chunks)
        self._on_read = on_read
        self.closed = False

    @property
    def in_waiting(self) -> int:
        """The next chunk's size once the first was read (it is "buffered")."""
        return len(self._chunks[0]) if self._chunks and self._on_read else 0

    def read(self, size: int = 1) -> bytes:
        """The next chunk (ignoring ``size``), or nothing."""
        self._on_read.append(size)
        return self._chunks.pop(0) if self._chunks else b""

    def close(self) -> None:
        """Closed by the reader."""
        self.closed = True


def test_a_reopen_request_waits_until_the_buffered_bytes_are_read() -> None:
    """A reopen asked for while a telegram is coming in (the meter was silent until now) is
    carried out once the port's buffer is empty, not between two chunks of the telegram."""
    received: list[bytes] = []
    reads: list[object] = []
    stop = threading.Event()
    ports: list[ScriptedPort] = []
    reader: PortReader

    def opener(_settings: PortSettings) -> ScriptedPort:
        if ports:  # the reopen happened: the test is over
            stop.set()
            return ScriptedPort([], reads)
        port = ScriptedPort([b"/FLU5", b"\\253769484_A\r\n...!ABCD\r\n"], reads)
        ports.append(port)
        return port

    def on_data(data: bytes, _now: float) -> None:
        received.append(data)
        reader.request_reopen()  # the processor found the meter silent meanwhile

    reader = PortReader(PortSettings("/dev/scripted"), on_data, opener=opener)  # type: ignore[arg-type]
    reader.run(stop)
    assert b"".join(received) == b"/FLU5\\253769484_A\r\n...!ABCD\r\n"
    assert ports[0].closed
    assert reader.opens == 2


class TricklingPort:
    """Nothing buffered until a blocking read(1) returns the first byte; the rest then waits."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._started = False
        self.reads: list[int] = []

    @property
    def in_waiting(self) -> int:
        """What arrived after the first byte."""
        return len(self._data) if self._started else 0

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes."""
        self.reads.append(size)
        self._started = True
        taken, self._data = self._data[:size], self._data[size:]
        return taken

    def close(self) -> None:
        """Nothing to close."""


def test_a_wake_up_by_the_first_byte_returns_what_came_with_it() -> None:
    """One call: the byte that ended the wait and the rest of the telegram buffered behind it."""
    port = TricklingPort(b"/FLU5\\253769484_A\r\n")
    assert read_available(port, "/dev/test") == b"/FLU5\\253769484_A\r\n"  # type: ignore[arg-type]
    assert port.reads == [1, 18]
    assert read_available(port, "/dev/test", wait=False) == b""  # type: ignore[arg-type]


@pytest.mark.skipif(os.name != "posix", reason="interruptible reads are POSIX ones")
def test_an_interruptible_reader_waits_for_data_without_polling_and_stops_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle interruptible reader does not wake twice a second; interrupt() ends its wait,
    a reopen request reopens at once, and data still arrives."""
    meter = PtyMeter(tmp_path / "meter")
    received: list[bytes] = []
    stop = threading.Event()
    waits: list[float] = []
    wait_for_device = sources._WakePipe.read

    def counting_wait(pipe: sources._WakePipe, fd: int, name: str, timeout: float) -> bytes:
        waits.append(timeout)
        return wait_for_device(pipe, fd, name, timeout)

    monkeypatch.setattr(sources._WakePipe, "read", counting_wait)
    reader = PortReader(
        PortSettings(str(meter.path), reopen_delay_min=0.05),
        lambda data, _now: received.append(data),
        interruptible=True,
    )
    thread = threading.Thread(target=reader.run, args=(stop,))
    try:
        thread.start()
        wait_until(lambda: reader.opens == 1 and len(waits) >= 1)
        time.sleep(1.5)
        assert len(waits) <= 2  # a 0.5 s timeout would have waited 3 or 4 times
        reader.request_reopen()
        wait_until(lambda: reader.opens == 2, timeout=1)
        meter.write(b"/FLU5\\253769484_A\r\n")
        wait_until(lambda: b"".join(received) == b"/FLU5\\253769484_A\r\n", timeout=1)
        asked = time.monotonic()
        stop.set()
        reader.interrupt()
        thread.join(1)
        assert not thread.is_alive()
        assert time.monotonic() - asked < 0.5
    finally:
        stop.set()
        reader.interrupt()
        thread.join(10)
        meter.close()
    reader.interrupt()  # after run() ended: nothing to wake, no error


@pytest.mark.skipif(os.name != "posix", reason="interruptible reads are POSIX ones")
def test_a_wake_up_with_no_read_waiting_ends_the_next_wait_but_hides_no_bytes(
    tmp_path: Path,
) -> None:
    """A wake-up sent while nobody waits ends the next wait at once, once; bytes that arrived
    meanwhile (what a reopen must read first) come with it."""
    meter = PtyMeter(tmp_path / "meter")
    port = serial.Serial(str(meter.path), 115200)
    pipe = sources._WakePipe()
    try:
        pipe.wake()
        started = time.monotonic()
        assert pipe.read(port.fileno(), "meter", 5.0) == b""
        assert time.monotonic() - started < 1
        pipe.wake()
        pipe.wake()
        meter.write(b"REST-OF-TELEGRAM")
        wait_until(lambda: port.in_waiting == 16, timeout=2)
        assert pipe.read(port.fileno(), "meter", 5.0) == b"REST-OF-TELEGRAM"
        started = time.monotonic()
        assert pipe.read(port.fileno(), "meter", 0.2) == b""  # the wake-ups were used up
        assert time.monotonic() - started >= 0.15
    finally:
        pipe.close()
        port.close()
        meter.close()


@pytest.mark.skipif(os.name != "posix", reason="interruptible reads are POSIX ones")
def test_a_device_readable_with_nothing_to_read_is_reported_disconnected() -> None:
    """What an unplugged USB adapter does (a hung-up terminal stays readable and reads
    nothing): a disconnection, at once, not an endless round of empty reads."""
    read_end, write_end = os.pipe()
    os.close(write_end)
    pipe = sources._WakePipe()
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"^serial port /dev/ttyUSB0 disconnected"):
            pipe.read(read_end, "/dev/ttyUSB0", 5.0)
        assert time.monotonic() - started < 1
    finally:
        pipe.close()
        os.close(read_end)


class LoggingSerial(serial.Serial):
    """A port class with a read of its own, as pyserial's spy:// (it logs what it reads)."""

    def read(self, size: int = 1) -> bytes:
        """Read (and, in spy://, log)."""
        return super().read(size)


def test_a_port_class_with_its_own_read_is_read_through_it() -> None:
    """Only pyserial's plain POSIX device is read around its read(); spy:// is not."""
    assert sources._interruptible(LoggingSerial()) is None
    plain = serial.Serial()
    assert sources._interruptible(plain) is (plain if os.name == "posix" else None)


@pytest.mark.skipif(os.name != "posix", reason="interruptible reads are POSIX ones")
def test_an_interruptible_reader_reads_what_the_device_holds_before_reopening(
    tmp_path: Path,
) -> None:
    """A reopen asked for while bytes wait in the device is made after they were read."""
    meter = PtyMeter(tmp_path / "meter")
    received: list[bytes] = []
    first_chunk = threading.Event()
    go_on = threading.Event()
    stop = threading.Event()

    def on_data(data: bytes, _now: float) -> None:
        received.append(data)
        if len(received) == 1:
            first_chunk.set()
            go_on.wait(5)

    reader = PortReader(
        PortSettings(str(meter.path), reopen_delay_min=0.05), on_data, interruptible=True
    )
    thread = threading.Thread(target=reader.run, args=(stop,))
    try:
        thread.start()
        wait_until(lambda: reader.opens == 1)
        meter.write(b"/FLU5\\253769484_A\r\n")
        assert first_chunk.wait(5)
        meter.write(b"1-0:1.8.1(000123.456*kWh)\r\n")
        time.sleep(0.1)  # in the device's buffer now
        reader.request_reopen()
        go_on.set()
        wait_until(lambda: reader.opens == 2, timeout=2)
        assert b"".join(received) == b"/FLU5\\253769484_A\r\n1-0:1.8.1(000123.456*kWh)\r\n"
    finally:
        stop.set()
        reader.interrupt()
        thread.join(10)
        meter.close()
    assert not thread.is_alive()


class FailingPort:
    """Opens, then fails every read before giving a byte (a hung-up terminal)."""

    def __init__(self) -> None:
        self.closed = False

    @property
    def in_waiting(self) -> int:
        """Nothing buffered."""
        return 0

    def read(self, size: int = 1) -> bytes:
        """Fail as pyserial does for a hung-up terminal."""
        raise serial.SerialException(
            "device reports readiness to read but returned no data (device disconnected or "
            "multiple access on port?)"
        )

    def close(self) -> None:
        """Closed by the reader."""
        self.closed = True


def test_a_port_failing_before_any_byte_is_reopened_with_back_off_not_in_a_loop() -> None:
    """Each reopen of a port that fails at once waits like a failed open (doubling delays)."""
    stop = threading.Event()
    ports: list[FailingPort] = []
    states: list[str] = []

    def opener(_settings: PortSettings) -> FailingPort:
        ports.append(FailingPort())
        return ports[-1]

    reader = PortReader(
        PortSettings("/dev/hung-up", reopen_delay_min=0.1, reopen_delay_max=0.4),
        lambda _data, _now: None,
        states.append,
        opener=opener,  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=reader.run, args=(stop,))
    thread.start()
    time.sleep(1.0)
    stop.set()
    thread.join(2)
    assert not thread.is_alive()
    # Delays of about 0.1, 0.2, 0.4, 0.4 s: four or five opens in a second, not thousands.
    assert 2 <= len(ports) <= 6, len(ports)
    assert all(port.closed for port in ports)
    assert "serial port /dev/hung-up disconnected (cable unplugged?)" in states
