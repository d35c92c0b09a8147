"""``p1mqtt run``: the bridge, from the meter's port to MQTT, as a long-running service."""

import argparse
import threading
from typing import Any

from p1mqtt.commands.options import add_config_arguments, overrides_from_args
from p1mqtt.config import load_config
from p1mqtt.logsetup import configure_logging
from p1mqtt.memory import release_startup_memory
from p1mqtt.service import Bridge
from p1mqtt.signals import stop_on_signals

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="read the meter and publish every reading to MQTT (the service)",
        description=(
            "Read the P1 port and publish every telegram and reading to the MQTT broker until "
            "stopped (SIGTERM or Ctrl+C). Settings come from defaults < config file < "
            "P1MQTT_* environment variables < these flags; see docs/configuration.md."
        ),
    )
    add_config_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the configuration and run the bridge until a termination signal."""
    config = load_config(args.config, overrides=overrides_from_args(args))
    log = config.logging
    configure_logging(log.level, log.format, log.file, log.max_bytes, log.backup_count)
    stop = threading.Event()
    with stop_on_signals(stop):
        bridge = Bridge(config)
        release_startup_memory()
        return bridge.run(stop)
