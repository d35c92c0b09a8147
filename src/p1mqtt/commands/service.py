"""``p1mqtt service install|uninstall|print-unit``: run p1mqtt as a system service.

On Linux: a systemd unit (``Type=notify`` with a watchdog, a dedicated user in the serial
group, hardened), the user, a starter configuration, then ``systemctl enable --now``. On
Windows: a service hosted by pywin32, restarted on failure. Both first build a *plan*, a list
of steps; ``--dry-run`` prints it as the exact commands (a shell script on Linux) and runs
nothing. Everything the plan depends on comes from a :class:`Host`, which tests replace.
"""

import argparse
import json
import os
import shlex
import shutil
import string
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, Protocol

from p1mqtt import winservice
from p1mqtt.errors import P1MqttError, UsageError
from p1mqtt.paths import service_data_dir_for

__all__ = [
    "Command",
    "Host",
    "PythonStep",
    "RemoveFile",
    "Step",
    "SystemHost",
    "WriteFile",
    "add_parser",
    "install_plan",
    "render_unit",
    "run",
    "uninstall_plan",
]

SERVICE_USER = "p1mqtt"
UNIT_NAME = "p1mqtt.service"
UNIT_PATH = PurePosixPath("/etc/systemd/system") / UNIT_NAME
LINUX_CONFIG = PurePosixPath("/etc/p1mqtt/config.json")
SERIAL_GROUPS = ("dialout", "uucp")
"""The group owning serial ports: dialout (Debian, Ubuntu, Fedora...), uucp (Arch)."""
_HEREDOC_END = "P1MQTT_EOF"
_HOME_PREFIXES = ("/home/", "/root/", "/run/user/")


# --- the unit file ------------------------------------------------------------------------


def unit_template() -> str:
    """The unit file template shipped with the package (``p1mqtt/data/p1mqtt.service``)."""
    return resources.files("p1mqtt").joinpath("data", UNIT_NAME).read_text(encoding="utf-8")


def render_unit(exec_start: str, *, user: str, config: PurePath, serial_group: str) -> str:
    """The unit file for this installation: the program, the user, the configuration file."""
    return string.Template(unit_template()).substitute(
        exec_start=exec_start,
        user=user,
        config=_unit_quote(str(config)),
        serial_group=serial_group,
    )


def _unit_quote(word: str) -> str:
    """One word of an ExecStart= line: '%' escaped, quoted when it holds spaces or quotes."""
    word = word.replace("%", "%%")
    if any(char.isspace() or char in "\"'\\;$" for char in word):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


# --- the steps of a plan ------------------------------------------------------------------


class Host(Protocol):
    """The machine a plan is made for and carried out on."""

    platform: str

    def is_admin(self) -> bool:
        """Root on Linux, an elevated administrator on Windows."""

    def systemd_running(self) -> bool:
        """systemd is the init system here (``/run/systemd/system`` exists)."""

    def user_exists(self, name: str) -> bool:
        """A user account with this name exists."""

    def group_exists(self, name: str) -> bool:
        """A group with this name exists."""

    def primary_group(self, user: str) -> str | None:
        """The name of an existing user's primary group."""

    def exists(self, path: PurePath) -> bool:
        """The file exists."""

    def serial_ports_by_id(self) -> list[str]:
        """The stable names under ``/dev/serial/by-id``."""

    def exec_start(self) -> str:
        """How a service starts this installation of p1mqtt (the program, maybe with args)."""

    def environ(self) -> dict[str, str]:
        """The environment variables."""

    def run(self, argv: Sequence[str]) -> int:
        """Run a command; return its exit status."""

    def write_file(self, path: PurePath, content: str, mode: int, group: str | None) -> None:
        """Create or replace a file with this content, mode and group."""

    def remove_file(self, path: PurePath) -> None:
        """Delete a file if it exists."""


class Step(Protocol):
    """One thing a plan does."""

    def text(self, platform: str) -> str:
        """What ``--dry-run`` prints: the exact command(s)."""

    def perform(self, host: Host) -> None:
        """Do it; raise :class:`P1MqttError` on failure."""


@dataclass(frozen=True, slots=True)
class Command:
    """Run a program; a failure stops the plan unless ``check`` is False."""

    argv: tuple[str, ...]
    check: bool = True

    def text(self, platform: str) -> str:
        """The command line, quoted for the platform's shell."""
        line = subprocess.list2cmdline(self.argv) if platform == "win32" else shlex.join(self.argv)
        if not self.check:
            return f"{line}{' || ver>nul' if platform == 'win32' else ' || true'}"
        return line

    def perform(self, host: Host) -> None:
        """Run it and check its exit status."""
        status = host.run(self.argv)
        if status and self.check:
            raise P1MqttError(f"`{self.text(host.platform)}` failed with exit status {status}")


@dataclass(frozen=True, slots=True)
class WriteFile:
    """Create or replace a file."""

    path: PurePath
    content: str
    mode: int = 0o644
    group: str | None = None

    def text(self, platform: str) -> str:
        """A here-document writing the file, then its group and mode."""
        if platform == "win32":
            body = "".join(f"\nrem     {line}" for line in self.content.splitlines())
            return f"rem write {self.path}:{body}"
        lines = [
            f"install -d -m 0755 {shlex.quote(str(self.path.parent))}",
            f"cat > {shlex.quote(str(self.path))} <<'{_HEREDOC_END}'",
            self.content.rstrip("\n"),
            _HEREDOC_END,
        ]
        if self.group is not None:
            lines.append(f"chgrp {shlex.quote(self.group)} {shlex.quote(str(self.path))}")
        lines.append(f"chmod {self.mode:04o} {shlex.quote(str(self.path))}")
        return "\n".join(lines)

    def perform(self, host: Host) -> None:
        """Write it."""
        try:
            host.write_file(self.path, self.content, self.mode, self.group)
        except OSError as error:
            raise P1MqttError(f"cannot write {self.path}: {error.strerror or error}") from error


@dataclass(frozen=True, slots=True)
class RemoveFile:
    """Delete a file (nothing to do when it is absent)."""

    path: PurePath

    def text(self, platform: str) -> str:
        """``rm -f`` / ``del``."""
        if platform == "win32":
            return f'del /f "{self.path}"'
        return f"rm -f {shlex.quote(str(self.path))}"

    def perform(self, host: Host) -> None:
        """Delete it."""
        try:
            host.remove_file(self.path)
        except OSError as error:
            raise P1MqttError(f"cannot remove {self.path}: {error.strerror or error}") from error


@dataclass(frozen=True, slots=True)
class PythonStep:
    """A step done through an API (pywin32) rather than a command; printed as a remark."""

    description: str
    action: Callable[[], None] = field(compare=False)

    def text(self, platform: str) -> str:
        """The description, as a comment of the platform's shell."""
        return f"{'rem' if platform == 'win32' else '#'} {self.description}"

    def perform(self, host: Host) -> None:
        """Call it."""
        self.action()


# --- plans ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps, and what to tell the user once they are done."""

    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()


def default_config_path(host: Host) -> PurePath:
    """Where the service reads its configuration unless ``--config`` says otherwise."""
    if host.platform == "win32":
        return service_data_dir_for(host.environ(), "win32") / "config.json"
    return LINUX_CONFIG


def starter_config(host: Host) -> str:
    """A configuration to begin with: the meter's port (guessed) and a local broker."""
    if host.platform == "win32":
        port = "COM3"
    else:
        by_id = host.serial_ports_by_id()
        port = by_id[0] if len(by_id) == 1 else "/dev/ttyUSB0"
    document = {"serial": {"port": port}, "mqtt": {"broker": "mqtt://localhost:1883"}}
    return json.dumps(document, indent=2) + "\n"


def serial_group(host: Host) -> str:
    """The group that owns serial ports on this system."""
    return next((name for name in SERIAL_GROUPS if host.group_exists(name)), SERIAL_GROUPS[0])


def install_plan(host: Host, *, user: str = SERVICE_USER, config: PurePath | None = None) -> Plan:
    """What ``p1mqtt service install`` does on this host."""
    config = config or default_config_path(host)
    if host.platform == "win32":
        return _windows_install_plan(host, config)
    if host.platform.startswith("linux"):
        return _linux_install_plan(host, user, config)
    raise P1MqttError(
        f"p1mqtt service install supports Linux (systemd) and Windows, not {host.platform}; "
        "run `p1mqtt run` from your own service manager (see docs/installation.md)"
    )


def _linux_install_plan(host: Host, user: str, config: PurePath) -> Plan:
    group = serial_group(host)
    unit = render_unit(host.exec_start(), user=user, config=config, serial_group=group)
    steps: list[Step] = []
    if host.user_exists(user):
        config_group = host.primary_group(user)
    else:
        config_group = user
        steps.append(
            Command(
                (
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    str(service_data_dir_for({}, "linux")),
                    "--shell",
                    "/usr/sbin/nologin",
                    "--groups",
                    group,
                    user,
                )
            )
        )
    steps.append(WriteFile(UNIT_PATH, unit, 0o644))
    notes = [f"{UNIT_NAME} is enabled and started; logs: journalctl -u p1mqtt -f"]
    if not host.exists(config):
        # Readable by the service's group only: a broker password may be added to it later.
        steps.append(WriteFile(config, starter_config(host), 0o640, config_group))
        notes.append(
            f"a starter configuration was written to {config}: set serial.port (a "
            "/dev/serial/by-id/... name) and mqtt.broker, then: systemctl restart p1mqtt"
        )
    steps.append(Command(("systemctl", "daemon-reload")))
    steps.append(Command(("systemctl", "enable", "--now", UNIT_NAME)))
    notes.append("check it with: p1mqtt health")
    return Plan(tuple(steps), tuple(notes))


def _windows_install_plan(host: Host, config: PurePath) -> Plan:
    name = winservice.SERVICE_NAME
    steps: list[Step] = []
    notes = []
    if not host.exists(config):
        steps.append(WriteFile(config, starter_config(host)))
        notes.append(
            f"a starter configuration was written to {config}: set serial.port (COM3...) and "
            f"mqtt.broker, then: sc.exe stop {name} && sc.exe start {name}"
        )
    steps += [
        PythonStep(
            f"install the Windows service {name!r} (pywin32: {winservice.CLASS_STRING} in "
            f"pythonservice.exe, automatic delayed start, configuration {config})",
            lambda: winservice.install(Path(config)),
        ),
        Command(
            (
                "sc.exe",
                "failure",
                name,
                "reset=",
                "86400",
                "actions=",
                "restart/5000/restart/5000/restart/60000",
            )
        ),
        Command(("sc.exe", "failureflag", name, "1")),
        Command(("sc.exe", "start", name)),
    ]
    log = service_data_dir_for(host.environ(), "win32") / winservice.LOG_FILE_NAME
    notes.append(f"the service logs to {log} unless logging.file is set; check: p1mqtt health")
    return Plan(tuple(steps), tuple(notes))


def uninstall_plan(host: Host) -> Plan:
    """What ``p1mqtt service uninstall`` does on this host (configuration and data are kept)."""
    if host.platform == "win32":
        name = winservice.SERVICE_NAME
        return Plan(
            (
                Command(("sc.exe", "stop", name), check=False),
                PythonStep(f"remove the Windows service {name!r} (pywin32)", winservice.remove),
            ),
            (f"kept: {service_data_dir_for(host.environ(), 'win32')} (configuration and logs)",),
        )
    if not host.platform.startswith("linux"):
        raise P1MqttError(
            f"p1mqtt service uninstall supports Linux and Windows, not {host.platform}"
        )
    state = service_data_dir_for({}, "linux")
    return Plan(
        (
            Command(("systemctl", "disable", "--now", UNIT_NAME), check=False),
            RemoveFile(UNIT_PATH),
            Command(("systemctl", "daemon-reload")),
        ),
        (
            f"kept: the user {SERVICE_USER}, {LINUX_CONFIG.parent} and {state}; to remove them "
            f"too: userdel {SERVICE_USER} && rm -r {LINUX_CONFIG.parent} {state}",
        ),
    )


# --- the real machine ----------------------------------------------------------------------


class SystemHost:
    """The machine p1mqtt runs on."""

    def __init__(self) -> None:
        self.platform = sys.platform

    def is_admin(self) -> bool:
        """Root on Linux, an elevated administrator on Windows."""
        if sys.platform == "win32":
            import ctypes  # noqa: PLC0415 - Windows only

            return bool(ctypes.windll.shell32.IsUserAnAdmin())
        return os.geteuid() == 0

    def systemd_running(self) -> bool:
        """systemd is the init system here."""
        return Path("/run/systemd/system").is_dir()

    def user_exists(self, name: str) -> bool:
        """A user account with this name exists."""
        if sys.platform == "win32":
            return False
        import pwd  # noqa: PLC0415 - POSIX only

        try:
            pwd.getpwnam(name)
        except KeyError:
            return False
        return True

    def group_exists(self, name: str) -> bool:
        """A group with this name exists."""
        if sys.platform == "win32":
            return False
        import grp  # noqa: PLC0415 - POSIX only

        try:
            grp.getgrnam(name)
        except KeyError:
            return False
        return True

    def primary_group(self, user: str) -> str | None:
        """The name of an existing user's primary group."""
        if sys.platform == "win32":
            return None
        import grp  # noqa: PLC0415 - POSIX only
        import pwd  # noqa: PLC0415 - POSIX only

        try:
            return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        except KeyError:
            return None

    def exists(self, path: PurePath) -> bool:
        """The file exists."""
        return Path(path).exists()

    def serial_ports_by_id(self) -> list[str]:
        """The stable names under ``/dev/serial/by-id``."""
        directory = Path("/dev/serial/by-id")
        return sorted(str(entry) for entry in directory.iterdir()) if directory.is_dir() else []

    def exec_start(self) -> str:
        """The ``p1mqtt`` program beside this interpreter, else ``python -m p1mqtt``."""
        python = Path(sys.executable)
        script = python.with_name("p1mqtt.exe" if sys.platform == "win32" else "p1mqtt")
        if script.is_file():
            return _unit_quote(str(script))
        return f"{_unit_quote(str(python))} -m p1mqtt"

    def environ(self) -> dict[str, str]:
        """The environment variables."""
        return dict(os.environ)

    def run(self, argv: Sequence[str]) -> int:
        """Run a command found on PATH, its output going to ours."""
        program = shutil.which(argv[0])
        if program is None:
            raise P1MqttError(f"command not found: {argv[0]}")
        return subprocess.run([program, *argv[1:]], check=False).returncode  # noqa: S603

    def write_file(self, path: PurePath, content: str, mode: int, group: str | None) -> None:
        """Write a temporary file beside it, set group and mode, then replace it."""
        target = Path(path)
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(content, encoding="utf-8")
        try:
            if group is not None:
                shutil.chown(temporary, group=group)
            temporary.chmod(mode)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def remove_file(self, path: PurePath) -> None:
        """Delete a file if it exists."""
        Path(path).unlink(missing_ok=True)


def current_host() -> Host:
    """The host the command acts on (tests replace this function)."""
    return SystemHost()


# --- the command line ----------------------------------------------------------------------


def add_parser(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register ``service`` and its ``install``, ``uninstall`` and ``print-unit`` commands."""
    parser = subparsers.add_parser(
        "service",
        help="install p1mqtt as a system service (systemd on Linux, a Windows service)",
        description=(
            "Install or remove p1mqtt as a service that starts at boot and restarts on failure: "
            "a hardened systemd unit with a watchdog on Linux, a pywin32 service on Windows. "
            "Needs root (sudo) or an elevated prompt; --dry-run prints the commands instead."
        ),
    )
    actions = parser.add_subparsers(dest="service_action", metavar="ACTION", required=True)
    install = actions.add_parser(
        "install", help="install, enable and start the service", description=install_help()
    )
    _add_common(install)
    install.add_argument(
        "--user",
        default=SERVICE_USER,
        metavar="NAME",
        help=f"Linux: the system user the service runs as, created if absent "
        f"(default: {SERVICE_USER})",
    )
    install.set_defaults(func=run)
    uninstall = actions.add_parser(
        "uninstall",
        help="stop and remove the service (configuration and data are kept)",
        description="Stop, disable and remove the service; configuration and data stay.",
    )
    uninstall.add_argument(
        "--dry-run", action="store_true", help="print the commands instead of running them"
    )
    uninstall.set_defaults(func=run)
    print_unit = actions.add_parser(
        "print-unit",
        help="print the systemd unit file install would write",
        description="Print the systemd unit for this installation of p1mqtt.",
    )
    print_unit.add_argument("--user", default=SERVICE_USER, metavar="NAME", help="service user")
    print_unit.add_argument(
        "--config", type=PurePath, default=None, metavar="FILE", help="configuration file"
    )
    print_unit.set_defaults(func=run)


def install_help() -> str:
    """The description of ``service install``."""
    return (
        f"Linux: create the system user {SERVICE_USER} (in the serial ports' group), write "
        f"{UNIT_PATH} and a starter {LINUX_CONFIG} if there is none, then systemctl "
        "daemon-reload and enable --now. Windows: register the service with pywin32 "
        '(pip install "p1mqtt[windows]"), restart on failure, start it.'
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="print the commands instead of running them"
    )
    parser.add_argument(
        "--config",
        type=PurePath,
        default=None,
        metavar="FILE",
        help=f"configuration file the service reads (default: {LINUX_CONFIG}, on Windows "
        "%%PROGRAMDATA%%\\p1mqtt\\config.json)",
    )


def run(args: argparse.Namespace) -> int:
    """Carry out ``service install``, ``uninstall`` or ``print-unit``."""
    host = current_host()
    action: str = args.service_action
    if action == "print-unit":
        config = args.config or LINUX_CONFIG
        group = serial_group(host) if host.platform.startswith("linux") else SERIAL_GROUPS[0]
        print(render_unit(host.exec_start(), user=args.user, config=config, serial_group=group))
        return 0
    if action == "install":
        if host.platform == "win32" and args.user != SERVICE_USER:
            raise UsageError("--user applies to Linux; the Windows service runs as LocalSystem")
        config = _absolute(args.config, host)
        plan = install_plan(host, user=args.user, config=config)
        warning = _home_warning(host)
    else:
        plan = uninstall_plan(host)
        warning = None
    if args.dry_run:
        _print_plan(plan, host, action, warning)
        return 0
    _check_can_run(host, action, warning)
    for step in plan.steps:
        print(f"+ {step.text(host.platform)}", flush=True)
        step.perform(host)
    for note in plan.notes:
        print(note)
    return 0


def _absolute(config: PurePath | None, host: Host) -> PurePath | None:
    if config is None or host.platform == "win32" or config.is_absolute():
        return config
    return Path(config).absolute()


def _home_warning(host: Host) -> str | None:
    if not host.platform.startswith("linux"):
        return None
    program = shlex.split(host.exec_start())[0]
    if program.startswith(_HOME_PREFIXES):
        return (
            f"p1mqtt is installed under a home directory ({program}), which the service cannot "
            "see (ProtectHome=yes): install it system-wide first, e.g. "
            "`sudo pipx install --global p1mqtt` (pipx 1.5 or newer), then run "
            "`sudo p1mqtt service install`"
        )
    return None


def _print_plan(plan: Plan, host: Host, action: str, warning: str | None) -> None:
    comment = "rem" if host.platform == "win32" else "#"
    who = "an elevated prompt" if host.platform == "win32" else "root"
    if warning:
        print(f"p1mqtt service {action}: warning: {warning}", file=sys.stderr)
    print(f"{comment} p1mqtt service {action} would run, as {who}:")
    for step in plan.steps:
        print(step.text(host.platform))


def _check_can_run(host: Host, action: str, warning: str | None) -> None:
    if not host.is_admin():
        if host.platform == "win32":
            need = "an elevated prompt (Run as administrator)"
        else:
            need = f"root: sudo p1mqtt service {action}"
        raise P1MqttError(
            f"service {action} changes the system and needs {need}; "
            f"`p1mqtt service {action} --dry-run` shows the commands without running them"
        )
    if host.platform.startswith("linux") and not host.systemd_running():
        raise P1MqttError(
            "systemd is not running on this machine (no /run/systemd/system): use "
            "`p1mqtt service print-unit` on a systemd machine, or the Docker image"
        )
    if warning and action == "install":
        raise P1MqttError(warning)
    if host.platform == "win32" and action == "install" and winservice.load_pywin32() is None:
        raise P1MqttError(
            'the Windows service needs pywin32: pip install "p1mqtt[windows]" in the same '
            "environment as p1mqtt, then run this again"
        )
