"""The configuration flags shared by ``run``, ``dump`` and ``demo`` (mosquitto_pub-style names).

Each flag overrides one configuration field. Flags default to "not given" (argparse's
``SUPPRESS``), so only the flags actually on the command line become overrides and the file
and environment keep their say over everything else. Defaults shown in ``--help`` are read from
the model, never repeated here.
"""

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p1mqtt.config import Config, load_config, section_types

__all__ = ["add_config_arguments", "load_config_from_args", "overrides_from_args"]


@dataclass(frozen=True, slots=True)
class _Flag:
    """One command-line flag and the configuration field it overrides."""

    flag: str
    path: str
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] = str
    choices: tuple[Any, ...] | None = None
    switch: bool = False
    default_text: str | None = None
    """Shown as the default when the field's own default (None) means something else."""


_SERIAL_GROUP = (
    "meter port",
    (
        _Flag("--port", "serial.port", "P1 port: device, COM3 or socket://host:port", "PORT"),
        _Flag("--baudrate", "serial.baudrate", "bits per second", "BAUD", int),
        _Flag(
            "--serial-format",
            "serial.format",
            "data bits, parity, stop bits: 8N1 (DSMR 4/5, e-MUCS) or 7E1 (DSMR 2.2/3)",
            "8N1|7E1",
        ),
        _Flag("--timezone", "meter.timezone", "time zone of the meter's clock", "ZONE"),
    ),
)
_MQTT_GROUP = (
    "MQTT broker",
    (
        _Flag("--broker", "mqtt.broker", "broker URL: mqtt[s]://[user@]host[:port]", "URL"),
        _Flag("--username", "mqtt.username", "MQTT user name", "USER"),
        _Flag(
            "--password-file",
            "mqtt.password_file",
            "file holding the MQTT password. There is no --password flag because other users "
            "can see a command line; use this, P1MQTT_MQTT_PASSWORD or the config file",
            "FILE",
            Path,
        ),
        _Flag(
            "--client-id", "mqtt.client_id", "MQTT client id", "ID", default_text="p1mqtt-HOSTNAME"
        ),
        _Flag("--keepalive", "mqtt.keepalive", "seconds between keep-alive pings", "SECONDS", int),
        _Flag("--mqtt-version", "mqtt.protocol", "MQTT protocol version", choices=("3.1.1", "5")),
        _Flag("--qos", "mqtt.qos", "quality of service", type=int, choices=(0, 1, 2)),
        _Flag("--cafile", "tls.cafile", "CA certificate(s) for mqtts:// (PEM)", "FILE", Path),
        _Flag("--cert", "tls.cert", "client certificate for mqtts:// (PEM)", "FILE", Path),
        _Flag("--key", "tls.key", "client certificate's private key (PEM)", "FILE", Path),
        _Flag(
            "--insecure",
            "tls.insecure",
            "do not check that the broker's certificate matches its name (testing only)",
            switch=True,
        ),
    ),
)
_OUTPUT_GROUP = (
    "topics and logging",
    (
        _Flag("--prefix", "topics.prefix", "first level(s) of every topic", "TOPIC"),
        _Flag(
            "--log-level",
            "logging.level",
            "least severe level logged",
            type=str.upper,
            choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        ),
        _Flag(
            "--log-file", "logging.file", "log to this file instead of the console", "FILE", Path
        ),
        _Flag(
            "--data-dir",
            "storage.data_dir",
            "directory for the status file, totals and the store-and-forward queue",
            "DIR",
            Path,
            default_text="the platform's state directory",
        ),
    ),
)
_GROUPS = (_SERIAL_GROUP, _MQTT_GROUP, _OUTPUT_GROUP)


class _RefusePassword(argparse.Action):
    """``--password``: refused with a reason (and not taken as short for --password-file)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "there is no --password option: other users can read a command line; use "
            "--password-file FILE, the P1MQTT_MQTT_PASSWORD environment variable or the "
            "configuration file"
        )


def add_config_arguments(parser: argparse.ArgumentParser, *, include_mqtt: bool = True) -> None:
    """Add ``--config`` and the per-field flags; the MQTT/TLS ones only with ``include_mqtt``."""
    group = parser.add_argument_group("configuration")
    group.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="configuration file, JSON or (*.toml) TOML (default: $P1MQTT_CONFIG, else none); "
        "see docs/configuration.md",
    )
    for title, flags in _GROUPS:
        if title == _MQTT_GROUP[0] and not include_mqtt:
            continue
        group = parser.add_argument_group(title)
        for flag in flags:
            _add_flag(group, flag)
        if title == _MQTT_GROUP[0]:
            group.add_argument(
                "--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS
            )


def _add_flag(group: argparse._ArgumentGroup, flag: _Flag) -> None:
    if flag.switch:
        group.add_argument(
            flag.flag,
            dest=flag.path,
            action="store_true",
            default=argparse.SUPPRESS,
            help=flag.help,
        )
        return
    group.add_argument(
        flag.flag,
        dest=flag.path,
        default=argparse.SUPPRESS,
        metavar=flag.metavar,
        type=flag.type,
        choices=flag.choices,
        help=f"{flag.help} (default: {flag.default_text or _default_of(flag.path)})".replace(
            "%", "%%"
        ),
    )


def _default_of(path: str) -> str:
    section, _, name = path.partition(".")
    fields = section_types()[section].model_fields
    if path == "serial.format":  # a shorthand: its default is its parts' defaults
        return "".join(str(fields[part].default) for part in ("bytesize", "parity", "stopbits"))
    default = fields[name].default
    return "none" if default is None else str(default)


def overrides_from_args(args: argparse.Namespace) -> dict[str, object]:
    """The configuration overrides given on the command line, as dotted paths."""
    given = vars(args)
    return {
        flag.path: given[flag.path] for _, flags in _GROUPS for flag in flags if flag.path in given
    }


def load_config_from_args(args: argparse.Namespace) -> Config:
    """Load the configuration the way ``run`` does: ``--config``, environment, flags."""
    return load_config(getattr(args, "config", None), overrides=overrides_from_args(args))
