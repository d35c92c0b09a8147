"""The sans-I/O P1 decoder: bytes in, events out.

>>> decoder = Decoder()
>>> for event in decoder.feed(chunk):           # doctest: +SKIP
...     if isinstance(event, TelegramDecoded):
...         print(event.telegram["1-0:1.8.1"].value)

No threads, sockets, clocks or global state: feed it bytes from anywhere (a serial port, a TCP
dongle, a capture file) in chunks of any size and it returns what those bytes completed.
Bad input never raises; it becomes :class:`FrameRejected` or :class:`BytesDiscarded` events.
"""

from datetime import tzinfo

from p1mqtt.errors import UsageError
from p1mqtt.protocol.framing import (
    Discarded,
    Frame,
    Framer,
    FramingEvent,
    Truncated,
)
from p1mqtt.protocol.model import (
    BytesDiscarded,
    Event,
    FrameRejected,
    RejectReason,
    TelegramDecoded,
)
from p1mqtt.protocol.objects import ObjectParser
from p1mqtt.protocol.telegram_parser import Rejection, TelegramParser
from p1mqtt.protocol.timestamps import TimestampParser

__all__ = ["DEFAULT_MAX_TELEGRAM_SIZE", "Decoder"]

DEFAULT_MAX_TELEGRAM_SIZE = 16 * 1024
"""Bytes one telegram may take. A full Belgian telegram is ~1.4 KB; with a 1024-character text
message (sent as 2048 hex digits) about 3.5 KB."""


class Decoder:
    """Decodes a stream of P1 bytes into telegrams.

    ``zone`` is used for timestamps without the S/W letter (and to name the zone of the ones
    with it); ``max_telegram_size`` bounds the buffer; ``cache_size`` bounds the memo of parsed
    lines (0 disables it).
    """

    __slots__ = ("_framer", "_parser")

    def __init__(
        self,
        zone: tzinfo | str = "Europe/Brussels",
        *,
        max_telegram_size: int = DEFAULT_MAX_TELEGRAM_SIZE,
        cache_size: int = 512,
    ) -> None:
        if max_telegram_size < 64:
            raise UsageError(
                f"max_telegram_size must be at least 64 bytes, not {max_telegram_size}"
            )
        if cache_size < 0:
            raise UsageError(f"cache_size must not be negative, not {cache_size}")
        times = TimestampParser(zone)
        self._parser = TelegramParser(ObjectParser(times, cache_size))
        self._framer = Framer(max_telegram_size)

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a telegram."""
        return self._framer.buffered

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Take the next bytes of the stream; return the events they complete, in order."""
        return self.decode(self.frames(data))

    def close(self) -> list[Event]:
        """The stream ended (end of file, port closed): report an unfinished telegram."""
        return self.decode(self.end_frames())

    # The two halves of feed() and close(), for a caller that frames in one thread (cheap:
    # find the telegram's end) and decodes in another. They touch disjoint state: frames()
    # and end_frames() may run in one thread while decode() runs in another.

    def frames(self, data: bytes | bytearray | memoryview) -> list[FramingEvent]:
        """Split the next bytes of the stream into frames (not parsed yet), in order."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise UsageError(f"Decoder.feed takes bytes, not {type(data).__name__}")
        return self._framer.feed(bytes(data))

    def end_frames(self) -> list[FramingEvent]:
        """The stream ended: the unfinished frame, if any, as :class:`Truncated`."""
        return self._framer.close()

    def decode(self, framed: list[FramingEvent]) -> list[Event]:
        """Parse what :meth:`frames` or :meth:`end_frames` returned into events, in order."""
        return self._convert(framed)

    def _convert(self, framed: list[FramingEvent]) -> list[Event]:
        events: list[Event] = []
        for item in framed:
            if isinstance(item, Frame):
                result = self._parser.parse(item.data)
                if isinstance(result, Rejection):
                    events.append(
                        FrameRejected(
                            result.reason, result.message, item.offset, len(item.data), item.data
                        )
                    )
                else:
                    events.append(TelegramDecoded(result, item.offset))
            elif isinstance(item, Discarded):
                events.append(BytesDiscarded(item.count, item.offset))
            elif isinstance(item, Truncated):
                events.append(
                    FrameRejected(
                        RejectReason.INCOMPLETE,
                        "incomplete telegram: it ended before its '!' CRC line",
                        item.offset,
                        len(item.data),
                        item.data,
                    )
                )
            else:
                events.append(
                    FrameRejected(
                        RejectReason.TOO_LONG,
                        f"telegram longer than {item.size} bytes without an end; dropped",
                        item.offset,
                        item.size,
                    )
                )
        return events
