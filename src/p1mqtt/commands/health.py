"""``p1mqtt health``: is the running p1mqtt well? One line, exit status 0 (yes) or 1 (no).

It reads the status file the running bridge keeps in its data directory, so it works wherever
the bridge runs: a Docker HEALTHCHECK, a monitoring script, an administrator's shell.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from p1mqtt.paths import data_dir_candidates
from p1mqtt.statusfile import (
    DEFAULT_MAX_AGE,
    DEFAULT_MIN_INTERVAL,
    STATUS_FILE_NAME,
    StatusFile,
    StatusFileError,
    evaluate,
    pid_alive,
)

__all__ = ["add_parser", "run", "status_path"]

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def add_parser(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register the ``health`` subcommand."""
    parser = subparsers.add_parser(
        "health",
        help="check the running p1mqtt: exit 0 when it is receiving telegrams and connected",
        description=(
            "Print one line about the running p1mqtt and exit 0 when it decoded a telegram in "
            "the last --max-age seconds and is connected to the broker, 1 otherwise. It reads "
            f"{STATUS_FILE_NAME} from the data directory the bridge writes to: --data-dir, else "
            "$STATE_DIRECTORY (set by systemd and the Docker image), else your own state "
            "directory, else the installed service's one."
        ),
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, metavar="DIR", help="the bridge's data directory"
    )
    parser.add_argument(
        "--max-age",
        type=_positive,
        default=DEFAULT_MAX_AGE,
        metavar="SECONDS",
        help=(
            f"longest acceptable silence of the meter (default: {DEFAULT_MAX_AGE:.0f}); keep it "
            f"above {DEFAULT_MIN_INTERVAL:.0f}, how often the bridge refreshes its status file"
        ),
    )
    parser.set_defaults(func=run)


def status_path(data_dir: Path | None = None) -> Path:
    """The status file to read: in ``data_dir``, else the first candidate directory holding one."""
    if data_dir is not None:
        return data_dir / STATUS_FILE_NAME
    paths = [Path(d) / STATUS_FILE_NAME for d in data_dir_candidates(os.environ, sys.platform)]
    return next((path for path in paths if path.exists()), paths[0])


def run(args: argparse.Namespace) -> int:
    """Read the status file, print the verdict, return 0 (healthy) or 1."""
    path = status_path(args.data_dir)
    try:
        status = StatusFile(path).load()
    except FileNotFoundError:
        status = None
    except StatusFileError as error:
        print(f"unknown: cannot read the status file {path}: {error}")
        return EXIT_UNHEALTHY
    healthy, reason = evaluate(status, time.time(), args.max_age, pid_alive, path=path)
    print(reason)
    return EXIT_HEALTHY if healthy else EXIT_UNHEALTHY
