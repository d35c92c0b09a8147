"""The sans-I/O P1 protocol core: bytes in, typed telegrams and events out.

Nothing here does I/O, starts threads, reads clocks or keeps global mutable state, so it can be
used by anyone who only wants a P1 parser, and tested exhaustively.
"""

from p1mqtt.protocol.catalogue import (
    CATALOGUE,
    MBUS_MEDIA,
    Country,
    MbusMedium,
    ObisDefinition,
    ValueKind,
    describe,
    lookup,
)
from p1mqtt.protocol.crc import crc16_arc
from p1mqtt.protocol.decoder import DEFAULT_MAX_TELEGRAM_SIZE, Decoder
from p1mqtt.protocol.encoder import encode_telegram
from p1mqtt.protocol.jsonformat import TelegramJsonEncoder
from p1mqtt.protocol.model import (
    BytesDiscarded,
    CosemObject,
    Event,
    FrameRejected,
    MbusDevice,
    ProfileEntry,
    Reading,
    RejectReason,
    Scalar,
    Telegram,
    TelegramDecoded,
)
from p1mqtt.protocol.timestamps import TimestampParser, format_timestamp

__all__ = [
    "CATALOGUE",
    "DEFAULT_MAX_TELEGRAM_SIZE",
    "MBUS_MEDIA",
    "BytesDiscarded",
    "CosemObject",
    "Country",
    "Decoder",
    "Event",
    "FrameRejected",
    "MbusDevice",
    "MbusMedium",
    "ObisDefinition",
    "ProfileEntry",
    "Reading",
    "RejectReason",
    "Scalar",
    "Telegram",
    "TelegramDecoded",
    "TelegramJsonEncoder",
    "TimestampParser",
    "ValueKind",
    "crc16_arc",
    "describe",
    "encode_telegram",
    "format_timestamp",
    "lookup",
]
