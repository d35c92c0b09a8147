"""The ``p1mqtt`` command line: one subcommand per job, the only place that exits.

Each subcommand lives in its own module under :mod:`p1mqtt.commands`, exposing
``add_parser(subparsers)`` (which registers the subcommand and sets ``func``) and a ``run(args)``
that returns an exit code. Only the module of the subcommand named on the command line is
imported (all of them for ``--help`` and mistakes), so that the long-running ``p1mqtt run``
does not keep the simulator, the embedded broker or the service installer in memory.
Exceptions of the :class:`~p1mqtt.errors.P1MqttError` family are turned into one line on stderr
and exit status 2 here, never a traceback.
"""

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from p1mqtt import __version__
from p1mqtt.errors import P1MqttError

__all__ = ["build_parser", "main"]

# Subcommand name -> its module, in the order `p1mqtt --help` lists them.
COMMANDS = {
    "run": "p1mqtt.commands.run",
    "dump": "p1mqtt.commands.dump",
    "demo": "p1mqtt.commands.demo",
    "decode": "p1mqtt.commands.decode",
    "check-config": "p1mqtt.commands.check_config",
    "simulate": "p1mqtt.commands.simulate",
    "health": "p1mqtt.commands.health",
    "service": "p1mqtt.commands.service",
}

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered, or only ``command`` if it is one.

    Registering a subcommand imports its module; parsing a command line that starts with that
    subcommand gives the same result (and the same errors and help) either way.
    """
    parser = argparse.ArgumentParser(
        prog="p1mqtt",
        description="Read a smart meter's P1 port and publish every reading to MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"p1mqtt {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [command] if command in COMMANDS else list(COMMANDS)
    for name in names:
        import_module(COMMANDS[name]).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
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
