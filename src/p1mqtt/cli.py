"""The ``p1mqtt`` command line: one subcommand per job, the only place that exits.

Each subcommand lives in its own module under :mod:`p1mqtt.commands`, exposing
``add_parser(subparsers)`` (which registers the subcommand and sets ``func``) and a ``run(args)``
that returns an exit code. Exceptions of the :class:`~p1mqtt.errors.P1MqttError` family are
turned into one line on stderr and exit status 2 here, never a traceback.
"""

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from p1mqtt import __version__
from p1mqtt.errors import P1MqttError

__all__ = ["build_parser", "main"]

# Subcommand modules, in the order `p1mqtt --help` lists them.
COMMAND_MODULES = (
    "p1mqtt.commands.run",
    "p1mqtt.commands.dump",
    "p1mqtt.commands.demo",
    "p1mqtt.commands.decode",
    "p1mqtt.commands.check_config",
    "p1mqtt.commands.simulate",
    "p1mqtt.commands.health",
    "p1mqtt.commands.service",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="p1mqtt",
        description="Read a smart meter's P1 port and publish every reading to MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"p1mqtt {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except P1MqttError as error:
        print(f"p1mqtt: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
