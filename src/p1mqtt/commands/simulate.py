"""``p1mqtt simulate``: a simulated Belgian meter on a pseudo-terminal, a TCP port or stdout.

The meter (:class:`p1mqtt.simulator.SimulatedMeter`) is pure; this module owns the clock. It
sends telegram *k* at ``origin + k * interval / speed`` on the monotonic clock (no drift; ticks
missed because the machine was suspended are skipped, not sent in a burst) and stamps it
``start + k * interval`` in simulated time. Ctrl+C or SIGTERM stop it cleanly (exit status 0,
symlink removed).
"""

import argparse
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from p1mqtt.errors import UsageError
from p1mqtt.signals import stop_on_signals
from p1mqtt.simulator import SimulatedMeter
from p1mqtt.simulator_output import MeterSink, PtyMeter, StreamMeter, TcpMeter

__all__ = ["Pacer", "StopFlag", "add_parser", "parse_tcp_address", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register the ``simulate`` subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="play a simulated Belgian smart meter on a pseudo-terminal, TCP port or stdout",
        description=(
            "Write telegrams of a simulated Fluvius meter (e-MUCS 1.7, Sagemcom T211 or S211, "
            "with gas and water meters) once per interval. By default on a new pseudo-terminal "
            "whose path is printed (read it with `p1mqtt dump --port PATH`); with --tcp to every "
            "client of a TCP server (a network P1 dongle, `socket://HOST:PORT`); with --stdout "
            "to standard output (`p1mqtt simulate --stdout --count 5 | p1mqtt decode`)."
        ),
    )
    meter = parser.add_argument_group("meter")
    meter.add_argument(
        "--model",
        choices=("t211", "s211"),
        default="t211",
        help="T211 three-phase (default) or S211 single-phase",
    )
    meter.add_argument(
        "--seed", type=int, default=0, help="random seed: same seed, same household (default 0)"
    )
    meter.add_argument("--no-gas", dest="gas", action="store_false", help="no gas meter")
    meter.add_argument("--no-water", dest="water", action="store_false", help="no water meter")
    meter.add_argument(
        "--start",
        metavar="ISO8601",
        help="simulated time of the first telegram (default: now); without UTC offset: meter time",
    )
    meter.add_argument(
        "--timezone",
        default="Europe/Brussels",
        help="the meter's time zone (default Europe/Brussels)",
    )
    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="simulated seconds between telegrams (default 1)",
    )
    timing.add_argument(
        "--count", type=int, metavar="N", help="stop after N telegrams (default: run until Ctrl+C)"
    )
    pace = timing.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="run simulated time FACTOR times faster than real time",
    )
    pace.add_argument("--fast", action="store_true", help="as fast as possible, no waiting")
    output = parser.add_argument_group("output (default: a new pseudo-terminal)")
    where = output.add_mutually_exclusive_group()
    where.add_argument(
        "--tcp",
        metavar="[HOST:]PORT",
        help="serve TCP clients on HOST:PORT (host default 127.0.0.1; port 0 = any free port)",
    )
    where.add_argument("--stdout", action="store_true", help="write to standard output")
    output.add_argument(
        "--link",
        metavar="PATH",
        help="pseudo-terminal only: keep a symlink PATH to it (removed on exit)",
    )
    parser.set_defaults(func=run)


def parse_tcp_address(text: str) -> tuple[str, int]:
    """``"PORT"``, ``"HOST:PORT"`` or ``"[IPv6]:PORT"`` to (host, port); default host loopback."""
    host, colon, port_text = text.rpartition(":")
    if not colon:
        host = "127.0.0.1"
    host = host.strip("[]") or "127.0.0.1"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"--tcp {text!r}: expected [HOST:]PORT with PORT 0..65535")
    return host, int(port_text)


class StopFlag(Protocol):
    """What the pacer needs of a stop request (a :class:`threading.Event`)."""

    def is_set(self) -> bool:
        """Whether a stop was requested."""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for a stop request; whether one came."""


class Pacer:
    """When to send telegram *k*: ``origin + k * period`` on a monotonic clock (no drift).

    ``period`` 0 means as fast as possible. A tick more than one period late (the machine was
    suspended, the process stopped) is skipped rather than caught up in a burst.
    ``delay_first`` puts the first tick one period after start-up, as a meter powering up,
    which gives readers time to attach.
    """

    def __init__(
        self,
        period: float,
        *,
        delay_first: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.period = period
        self.clock = clock
        self.origin = clock() + (period if delay_first else 0.0)
        self.skipped = 0

    def wait(self, tick: int, stop: StopFlag) -> int | None:
        """Wait for ``tick`` (or a later one if it is long past); ``None`` when stopped."""
        if self.period <= 0:
            return None if stop.is_set() else tick
        due = self.origin + tick * self.period
        late = self.clock() - due
        if late > self.period:
            missed = math.floor(late / self.period)
            self.skipped += missed
            tick += missed
            due += missed * self.period
        remaining = due - self.clock()
        stopped = stop.wait(remaining) if remaining > 0 else stop.is_set()
        return None if stopped else tick


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError) as error:  # OSError: a directory
        raise UsageError(f"unknown time zone {name!r}") from error


def _start_time(text: str | None, zone: ZoneInfo, lead: float) -> datetime:
    if text is None:
        now = datetime.now(zone).replace(microsecond=0)
        return now + timedelta(seconds=lead)
    try:
        start = datetime.fromisoformat(text)
    except ValueError as error:
        raise UsageError(f"--start {text!r} is not an ISO 8601 date-time") from error
    return start.replace(tzinfo=zone) if start.tzinfo is None else start


def _validate(args: argparse.Namespace) -> None:
    if not args.interval > 0 or not math.isfinite(args.interval):
        raise UsageError(f"--interval must be a positive number of seconds, not {args.interval}")
    if not args.speed > 0 or not math.isfinite(args.speed):
        raise UsageError(f"--speed must be a positive factor, not {args.speed}")
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be at least 1, not {args.count}")
    if args.link and (args.tcp or args.stdout):
        raise UsageError("--link applies to the pseudo-terminal only (not with --tcp/--stdout)")


def _open_sink(args: argparse.Namespace) -> tuple[MeterSink, str | None]:
    """The sink and the line announcing it (``None`` for stdout)."""
    if args.stdout:
        return StreamMeter(sys.stdout.buffer), None
    if args.tcp is not None:
        host, port = parse_tcp_address(args.tcp)
        server = TcpMeter(host, port)
        server.start()
        return server, f"simulated meter on {server.url}"
    pty = PtyMeter(args.link)
    path = pty.start()
    shown = f"{path} (link {args.link})" if args.link else path
    return pty, f"simulated meter on {shown}"


def _send(
    meter: SimulatedMeter,
    *,
    sink: MeterSink,
    pacer: Pacer,
    start: datetime,
    interval: timedelta,
    count: int | None,
    stop: StopFlag,
) -> tuple[int, int]:
    """The real-time loop; returns (telegrams written, telegrams dropped)."""
    sent = dropped = 0
    tick = 0
    start = start.astimezone(UTC)  # elapsed time: aware arithmetic in a zone is wall-clock
    while count is None or sent + dropped < count:
        due = pacer.wait(tick, stop)
        if due is None:
            break
        tick = due
        if sink.write(meter.telegram(start + tick * interval)):
            sent += 1
        else:
            dropped += 1
            if isinstance(sink, StreamMeter) and sink.closed:
                break
        tick += 1
    return sent, dropped


def run(args: argparse.Namespace) -> int:
    """Run the simulated meter until ``--count`` telegrams are written or a signal arrives."""
    _validate(args)
    zone = _zone(args.timezone)
    period = 0.0 if args.fast else args.interval / args.speed
    live = not args.stdout and period > 0
    start = _start_time(args.start, zone, args.interval if live else 0.0)
    meter = SimulatedMeter(
        args.model, start=start, seed=args.seed, gas=args.gas, water=args.water, zone=args.timezone
    )
    stop = threading.Event()
    with stop_on_signals(stop):
        sink, announcement = _open_sink(args)
        try:
            if announcement:
                print(announcement, flush=True)
            pacer = Pacer(period, delay_first=live)
            sent, dropped = _send(
                meter,
                sink=sink,
                pacer=pacer,
                start=start,
                interval=timedelta(seconds=args.interval),
                count=args.count,
                stop=stop,
            )
        finally:
            sink.close()
    if isinstance(sink, StreamMeter):
        if sink.closed:
            _silence_stdout()
        return 0
    unread = sink.discarded if isinstance(sink, PtyMeter) else 0
    print(
        f"p1mqtt simulate: {sent} telegrams written ({unread} discarded unread), {dropped} dropped",
        file=sys.stderr,
    )
    return 0


def _silence_stdout() -> None:
    """The reader of stdout went away: point stdout at /dev/null so exit does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
