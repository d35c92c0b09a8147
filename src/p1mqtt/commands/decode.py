"""``p1mqtt decode [FILE ...]``: decode captured P1 bytes to one JSON object per telegram."""

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from p1mqtt.errors import UsageError
from p1mqtt.protocol import (
    Decoder,
    FrameRejected,
    TelegramDecoded,
    TelegramJsonEncoder,
)

__all__ = ["add_parser", "decode_stream", "run"]

_CHUNK = 64 * 1024


def add_parser(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register the ``decode`` subcommand."""
    parser = subparsers.add_parser(
        "decode",
        help="decode captured P1 bytes to JSON, one telegram per line",
        description=(
            "Decode a raw P1 byte stream (a capture such as `cat /dev/ttyUSB0 > file`) and print "
            "one JSON object per valid telegram on stdout. Rejected telegrams go to stderr with "
            "their reason. Exit status 0 when nothing was rejected, 1 otherwise."
        ),
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="capture files; '-' or none for standard input"
    )
    parser.add_argument(
        "--timezone",
        default="Europe/Brussels",
        help="zone for timestamps without S/W letter (default: Europe/Brussels)",
    )
    parser.set_defaults(func=run)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def decode_stream(name: str, stream: BinaryIO, out: Any, err: Any, zone: str) -> tuple[int, int]:
    """Decode one stream, writing JSON lines to ``out`` and rejections to ``err``.

    Returns (telegrams decoded, frames rejected).
    """
    decoder = Decoder(zone)
    encoder = TelegramJsonEncoder()
    decoded = rejected = 0
    for chunk in (*_chunks(stream), None):
        events = decoder.feed(chunk) if chunk is not None else decoder.close()
        for event in events:
            if isinstance(event, TelegramDecoded):
                out.write(encoder.encode(event.telegram) + "\n")
                decoded += 1
            elif isinstance(event, FrameRejected):
                rejected += 1
                err.write(f"{name}: byte {event.offset}: rejected: {event.message}\n")
    return decoded, rejected


def run(args: argparse.Namespace) -> int:
    """Decode every file named (or standard input) and report."""
    try:
        ZoneInfo(args.timezone)
    except (ValueError, OSError, ZoneInfoNotFoundError) as error:  # OSError: a directory
        raise UsageError(f"unknown time zone {args.timezone!r}") from error
    names: list[str] = args.files or ["-"]
    total_rejected = 0
    for name in names:
        if name == "-":
            _, rejected = decode_stream(
                "<stdin>", sys.stdin.buffer, sys.stdout, sys.stderr, args.timezone
            )
        else:
            try:
                with Path(name).open("rb") as stream:
                    _, rejected = decode_stream(name, stream, sys.stdout, sys.stderr, args.timezone)
            except OSError as error:
                print(f"p1mqtt decode: {name}: {error.strerror}", file=sys.stderr)
                rejected = 1
        total_rejected += rejected
    sys.stdout.flush()
    return 1 if total_rejected else 0
