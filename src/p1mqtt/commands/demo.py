"""``p1mqtt demo``: a simulated meter -> the real bridge -> an MQTT broker -> printed messages.

Nothing else needs to run: without ``--broker`` an embedded broker (the ``demo`` extra) listens
on the loopback interface. The simulated Fluvius meter writes a telegram per second into a
pseudo-terminal, which the bridge reads exactly as it reads a USB P1 cable; a subscriber prints
every message it receives, topic and payload. Ctrl+C stops everything cleanly.
"""

import argparse
import shutil
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from p1mqtt.commands.simulate import Pacer
from p1mqtt.config import load_config, parse_broker_url
from p1mqtt.embedded_broker import EmbeddedBroker
from p1mqtt.errors import UsageError
from p1mqtt.logsetup import configure_logging
from p1mqtt.service import Bridge
from p1mqtt.signals import stop_on_signals
from p1mqtt.simulator import SimulatedMeter
from p1mqtt.simulator_output import PtyMeter

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="simulated meter -> p1mqtt -> MQTT broker, printing every message",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="use this broker (mqtt://host[:port]) instead of the embedded one",
    )
    parser.add_argument(
        "--model", choices=("t211", "s211"), default="t211", help="three- or single-phase meter"
    )
    parser.add_argument("--prefix", default="p1mqtt", help="topic prefix (default: p1mqtt)")
    parser.add_argument(
        "--duration", type=float, default=0.0, metavar="SECONDS", help="stop after this long"
    )
    parser.add_argument(
        "--full", action="store_true", help="print whole payloads (default: cut to one line)"
    )
    parser.add_argument("--verbose", action="store_true", help="show the bridge's log too")
    parser.set_defaults(func=run)


class _Printer:
    """Subscribes to everything on the broker and prints each message."""

    def __init__(self, host: str, port: int, out: TextIO, full: bool) -> None:
        self._out = out
        self._width = 0 if full else max(60, shutil.get_terminal_size((120, 24)).columns)
        self._lock = threading.Lock()
        self.count = 0
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id="p1mqtt-demo-sub")
        self._client.on_connect = lambda client, *_: client.subscribe("#", qos=1)
        self._client.on_message = self._on_message
        self._client.connect_async(host, port)
        self._client.loop_start()

    def _on_message(self, _client: paho.Client, _data: object, message: paho.MQTTMessage) -> None:
        payload = message.payload.decode("utf-8", "replace")
        line = f"{message.topic}  {payload}"
        if self._width and len(line) > self._width:
            line = line[: self._width - 3] + "..."
        with self._lock:
            self.count += 1
            self._out.write(line + "\n")
            self._out.flush()

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def _feed(meter: SimulatedMeter, pty: PtyMeter, stop: threading.Event) -> None:
    pacer = Pacer(1.0, delay_first=True)
    tick = 0
    while (due := pacer.wait(tick, stop)) is not None:
        pty.write(meter.telegram(datetime.now(UTC)))
        tick = due + 1


def run(args: argparse.Namespace) -> int:
    """Start the broker, the simulated meter, the bridge and the printer; run until stopped."""
    configure_logging("INFO" if args.verbose else "WARNING")
    broker: EmbeddedBroker | None = None
    if args.broker:
        address = parse_broker_url(args.broker)
        url, host, port = args.broker, address.host, address.port
        if address.use_tls:
            raise UsageError("the demo's printer speaks plain MQTT; give an mqtt:// broker")
    else:
        broker = EmbeddedBroker()
        broker.start()
        url, host, port = f"mqtt://{broker.host}:{broker.port}", broker.host, broker.port
    stop = threading.Event()
    meter = SimulatedMeter(args.model, start=datetime.now(UTC), seed=1)
    with tempfile.TemporaryDirectory(prefix="p1mqtt-demo-") as state, PtyMeter() as pty:
        path = pty.start()
        config = load_config(
            None,
            env={},
            overrides={
                "serial.port": path,
                "mqtt.broker": url,
                "mqtt.client_id": "p1mqtt-demo",
                "topics.prefix": args.prefix,
                "storage.data_dir": str(Path(state)),
                "health.publish_interval": 10,
            },
        )
        where = "the embedded MQTT broker" if broker else url
        print(
            f"p1mqtt demo: simulated Fluvius {args.model.upper()} on {path} -> p1mqtt -> {where} "
            f"({host}:{port}).\nEvery message a subscriber receives is printed below; "
            "Ctrl+C stops.\n",
            flush=True,
        )
        printer = _Printer(host, port, sys.stdout, args.full)
        feeder = threading.Thread(target=_feed, args=(meter, pty, stop), name="demo-meter")
        feeder.start()
        timer = threading.Timer(args.duration, stop.set) if args.duration > 0 else None
        if timer is not None:
            timer.start()
        try:
            with stop_on_signals(stop):
                status = Bridge(config).run(stop)
        finally:
            stop.set()
            if timer is not None:
                timer.cancel()
            feeder.join()
            printer.close()
            if broker is not None:
                broker.stop()
    print(f"\np1mqtt demo: {printer.count} messages received; stopped.", flush=True)
    return status
