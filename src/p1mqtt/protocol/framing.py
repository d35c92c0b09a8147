"""Finding telegrams in a byte stream that arrives in chunks of any size.

A telegram starts at ``/`` (any ``/`` starts a new one and abandons an unfinished one) and ends
with the line feed of the line that starts with ``!``. The buffer never holds more than
``max_size`` bytes: a frame that does not end within that is rejected and the stream is searched
for the next ``/``. Every decision depends only on the bytes, never on how they were chunked.
"""

from dataclasses import dataclass

__all__ = ["Discarded", "Frame", "Framer", "FramingEvent", "Overflow", "Truncated"]


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete frame, ``/`` through the line feed after ``!``."""

    data: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class Truncated:
    """A frame abandoned because a new ``/`` arrived (or the stream ended) before its end."""

    data: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class Overflow:
    """A frame that grew past the buffer bound; its bytes were dropped."""

    size: int
    offset: int


@dataclass(frozen=True, slots=True)
class Discarded:
    """Bytes outside any frame."""

    count: int
    offset: int


FramingEvent = Frame | Truncated | Overflow | Discarded


class Framer:
    """Splits a byte stream into frames with a bounded buffer."""

    __slots__ = ("_bang", "_buffer", "_in_frame", "_max_size", "_offset", "_scanned")

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._buffer = bytearray()
        self._in_frame = False
        self._scanned = 0
        self._bang = -1
        self._offset = 0  # stream position of _buffer[0]

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a telegram (never more than ``max_size``)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[FramingEvent]:
        """Take the next bytes of the stream and return what they complete."""
        events: list[FramingEvent] = []
        buffer = self._buffer
        buffer += data
        while buffer:
            if not self._in_frame and not self._hunt(events):
                break
            if not self._advance(events):
                break
        return events

    def close(self) -> list[FramingEvent]:
        """The stream ended: report an unfinished frame, if any, and reset."""
        events: list[FramingEvent] = []
        if self._in_frame and self._buffer:
            events.append(Truncated(bytes(self._buffer), self._offset))
        self._drop(len(self._buffer))
        self._in_frame = False
        return events

    def _drop(self, count: int) -> None:
        del self._buffer[:count]
        self._offset += count

    def _hunt(self, events: list[FramingEvent]) -> bool:
        """Skip to the next ``/``; return whether a frame started."""
        buffer = self._buffer
        start = buffer.find(b"/")
        if start < 0:
            events.append(Discarded(len(buffer), self._offset))
            self._drop(len(buffer))
            return False
        if start:
            events.append(Discarded(start, self._offset))
            self._drop(start)
        self._in_frame = True
        self._scanned = 1
        self._bang = -1
        return True

    def _advance(self, events: list[FramingEvent]) -> bool:
        """Look for the end of the current frame; return whether to keep going."""
        buffer = self._buffer
        limit = min(len(buffer), self._max_size)
        if self._bang < 0:
            slash = buffer.find(b"/", self._scanned, limit)
            bang = buffer.find(b"\n!", max(self._scanned - 1, 0), limit)
            if bang >= 0 and (slash < 0 or bang < slash):
                self._bang = bang + 1
                self._scanned = bang + 2
            elif slash >= 0:
                events.append(Truncated(bytes(buffer[:slash]), self._offset))
                self._drop(slash)
                self._scanned = 1
                return True
            else:
                return self._wait(events, limit)
        newline = buffer.find(b"\n", self._scanned, limit)
        slash = buffer.find(b"/", self._scanned, limit)
        if newline >= 0 and (slash < 0 or newline < slash):
            end = newline + 1
        elif slash >= 0:
            end = slash  # the CRC line was cut short by the next telegram
        else:
            return self._wait(events, limit)
        events.append(Frame(bytes(buffer[:end]), self._offset))
        self._drop(end)
        self._in_frame = False
        return True

    def _wait(self, events: list[FramingEvent], limit: int) -> bool:
        """Nothing ends the frame within ``limit``: wait for more bytes or give up on it."""
        if limit >= self._max_size:
            events.append(Overflow(limit, self._offset))
            self._drop(limit)
            self._in_frame = False
            return True
        self._scanned = limit
        return False
