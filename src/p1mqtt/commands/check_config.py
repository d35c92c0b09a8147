"""``p1mqtt check-config [FILE]``: validate a configuration and show the effective settings."""

import argparse
import json
import os
from pathlib import Path
from typing import Any

from p1mqtt.config import (
    ConfigValidationError,
    check_files,
    load_config,
    resolve_config_path,
    schema_text,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register the ``check-config`` subcommand."""
    parser = subparsers.add_parser(
        "check-config",
        help="validate a configuration file and show the effective configuration",
        description=(
            "Validate FILE together with the P1MQTT_* environment variables, without opening "
            "the port or connecting to the broker, and check that the files it names can be "
            "read. Prints the effective configuration (secrets as ***) and exits 0 when it is "
            "valid; prints every error and exits 2 otherwise."
        ),
    )
    parser.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE",
        help="configuration file, JSON or (*.toml) TOML (default: $P1MQTT_CONFIG, else none)",
    )
    parser.add_argument(
        "--schema",
        action="store_true",
        help="print the JSON Schema of the configuration file instead "
        "(p1mqtt check-config --schema > docs/p1mqtt.schema.json)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the schema, or validate and print the effective configuration."""
    if args.schema:
        print(schema_text(), end="")
        return 0
    path = resolve_config_path(args.file, os.environ)
    config = load_config(path)
    problems = check_files(config)
    if problems:
        raise ConfigValidationError(problems)
    name = str(path) if path is not None else "defaults and environment (no file)"
    print(f"{name}: configuration is valid")
    print(json.dumps(config.redacted(), indent=2, ensure_ascii=False))
    return 0
