"""``p1mqtt dump``: show the meter's readings live in the terminal (try a new cable with it)."""

import argparse
import sys
import threading
from typing import Any, TextIO

from p1mqtt.commands.options import add_config_arguments, overrides_from_args
from p1mqtt.config import load_config
from p1mqtt.logsetup import configure_logging
from p1mqtt.protocol import (
    BytesDiscarded,
    Decoder,
    FrameRejected,
    Telegram,
    TelegramDecoded,
    TelegramJsonEncoder,
    describe,
)
from p1mqtt.service import port_settings
from p1mqtt.signals import stop_on_signals
from p1mqtt.sources import PortReader
from p1mqtt.topics import plain_payload

__all__ = ["add_parser", "format_telegram", "run"]


def add_parser(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register the ``dump`` subcommand."""
    parser = subparsers.add_parser(
        "dump",
        help="read the port and show the decoded readings live",
        description=(
            "Read the meter's port and print every telegram's readings as they arrive: the "
            "first thing to run with a new cable. Ctrl+C stops."
        ),
    )
    add_config_arguments(parser, include_mqtt=False)
    parser.add_argument("--json", action="store_true", help="print each telegram as JSON")
    parser.add_argument(
        "--count", type=int, default=0, metavar="N", help="stop after N telegrams (default: never)"
    )
    parser.set_defaults(func=run)


def format_telegram(telegram: Telegram, number: int) -> str:
    """A human-readable block for one telegram: key, OBIS, value, unit, label."""
    country = telegram.country
    when = telegram.timestamp.isoformat() if telegram.timestamp else "no timestamp"
    lines = [f"telegram {number}  {when}  /{telegram.header}"]
    for key, obj in telegram.by_key():
        value = plain_payload(obj)
        if len(value) > 60:
            value = value[:57] + "..."
        unit = obj.unit or ""
        label = describe(obj.definition, country) if obj.definition else "(not in the catalogue)"
        lines.append(f"  {key:<32} {obj.obis:<12} {value:>16} {unit:<5} {label}")
    for line in telegram.unparsed:
        lines.append(f"  ? not understood: {line}")
    return "\n".join(lines) + "\n"


class _Printer:
    """Decodes chunks and prints what they complete."""

    def __init__(
        self,
        decoder: Decoder,
        out: TextIO,
        *,
        as_json: bool,
        count: int,
        stop: threading.Event,
    ) -> None:
        self._decoder = decoder
        self._out = out
        self._encoder = TelegramJsonEncoder() if as_json else None
        self._count = count
        self._stop = stop
        self.telegrams = 0
        self.rejected = 0

    def on_data(self, data: bytes, _now: float) -> None:
        for event in self._decoder.feed(data):
            if isinstance(event, TelegramDecoded):
                self.telegrams += 1
                if self._encoder is not None:
                    self._out.write(self._encoder.encode(event.telegram) + "\n")
                else:
                    self._out.write(format_telegram(event.telegram, self.telegrams))
                self._out.flush()
                if self._count and self.telegrams >= self._count:
                    self._stop.set()
            elif isinstance(event, FrameRejected):
                self.rejected += 1
                self._out.write(f"! telegram rejected: {event.message}\n")
            elif isinstance(event, BytesDiscarded) and event.count > 1:
                self._out.write(f"! {event.count} bytes outside any telegram skipped\n")

    def on_state(self, state: str) -> None:
        if state != "open":
            sys.stderr.write(f"p1mqtt dump: {state}; retrying\n")


def run(args: argparse.Namespace) -> int:
    """Read the port and print telegrams until Ctrl+C (or ``--count``)."""
    config = load_config(args.config, overrides=overrides_from_args(args))
    log = config.logging
    configure_logging("WARNING" if log.level == "INFO" else log.level, log.format, log.file)
    stop = threading.Event()
    settings = port_settings(config)
    printer = _Printer(
        Decoder(config.meter.timezone, max_telegram_size=config.meter.max_telegram_size),
        sys.stdout,
        as_json=args.json,
        count=args.count,
        stop=stop,
    )
    sys.stderr.write(f"p1mqtt dump: reading {settings.port} (Ctrl+C stops)\n")
    with stop_on_signals(stop):
        PortReader(settings, printer.on_data, printer.on_state).run(stop)
    sys.stderr.write(f"p1mqtt dump: {printer.telegrams} telegrams, {printer.rejected} rejected\n")
    return 0
