"""``p1mqtt service install|uninstall|print-unit`` on a fake host: plans, dry runs, refusals."""

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PureWindowsPath

import pytest

from p1mqtt.cli import main
from p1mqtt.commands import service
from p1mqtt.commands.service import PythonStep, install_plan, render_unit, starter_config
from p1mqtt.config import load_config

USERADD = (
    "useradd --system --user-group --no-create-home --home-dir /var/lib/p1mqtt "
    "--shell /usr/sbin/nologin --groups dialout p1mqtt"
)


@dataclass
class FakeHost:
    """A machine that records what it is asked to do instead of doing it."""

    platform: str = "linux"
    admin: bool = True
    systemd: bool = True
    users: dict[str, str] = field(default_factory=dict)
    """user -> primary group"""
    groups: set[str] = field(default_factory=lambda: {"dialout"})
    files: set[str] = field(default_factory=set)
    by_id: list[str] = field(default_factory=list)
    program: str = "/usr/local/bin/p1mqtt"
    env: dict[str, str] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    """Commands (argv joined) that exit with status 1."""
    ran: list[tuple[str, ...]] = field(default_factory=list)
    written: list[tuple[str, str, int, str | None]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def is_admin(self) -> bool:
        return self.admin

    def systemd_running(self) -> bool:
        return self.systemd

    def user_exists(self, name: str) -> bool:
        return name in self.users

    def group_exists(self, name: str) -> bool:
        return name in self.groups

    def primary_group(self, user: str) -> str | None:
        return self.users.get(user)

    def exists(self, path: PurePath) -> bool:
        return str(path) in self.files

    def serial_ports_by_id(self) -> list[str]:
        return self.by_id

    def exec_start(self) -> str:
        return self.program

    def environ(self) -> dict[str, str]:
        return self.env

    def run(self, argv: Sequence[str]) -> int:
        self.ran.append(tuple(argv))
        return 1 if " ".join(argv) in self.failing else 0

    def write_file(self, path: PurePath, content: str, mode: int, group: str | None) -> None:
        self.written.append((str(path), content, mode, group))

    def remove_file(self, path: PurePath) -> None:
        self.removed.append(str(path))

    @property
    def touched(self) -> bool:
        """Whether anything at all was done."""
        return bool(self.ran or self.written or self.removed)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    """The fake host the service command acts on."""
    fake = FakeHost()
    monkeypatch.setattr(service, "current_host", lambda: fake)
    return fake


def command_lines(script: str) -> list[str]:
    """The lines of a printed plan outside here-documents and comments."""
    lines, heredoc_end = [], None
    for line in script.splitlines():
        if heredoc_end is not None:
            if line == heredoc_end:
                heredoc_end = None
            continue
        if line.startswith(("#", "rem ")):
            continue
        lines.append(line)
        if "<<'" in line:
            heredoc_end = line.split("<<'", 1)[1].rstrip("'")
    return lines


def test_dry_run_prints_exactly_the_commands_and_runs_nothing(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a fresh Linux machine: user, unit, starter config, daemon-reload, enable --now."""
    assert main(["service", "install", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert command_lines(out) == [
        USERADD,
        "install -d -m 0755 /etc/systemd/system",
        "cat > /etc/systemd/system/p1mqtt.service <<'P1MQTT_EOF'",
        "chmod 0644 /etc/systemd/system/p1mqtt.service",
        "install -d -m 0755 /etc/p1mqtt",
        "cat > /etc/p1mqtt/config.json <<'P1MQTT_EOF'",
        "chgrp p1mqtt /etc/p1mqtt/config.json",
        "chmod 0640 /etc/p1mqtt/config.json",
        "systemctl daemon-reload",
        "systemctl enable --now p1mqtt.service",
    ]
    unit = render_unit(
        "/usr/local/bin/p1mqtt",
        user="p1mqtt",
        config=PurePath("/etc/p1mqtt/config.json"),
        serial_group="dialout",
    )
    assert unit.rstrip("\n") in out
    assert not host.touched


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_dry_run_output_is_a_valid_shell_script(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """What --dry-run prints can be pasted into a root shell: bash parses it."""
    main(["service", "install", "--dry-run"])
    script = capsys.readouterr().out
    result = subprocess.run(
        ["bash", "-n"], input=script, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr


def test_dry_run_skips_what_exists(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing user and configuration are left alone; --user and --config are used."""
    host.users["meter"] = "meter"
    host.files.add("/srv/p1/config.json")
    main(["service", "install", "--dry-run", "--user", "meter", "--config", "/srv/p1/config.json"])
    out = capsys.readouterr().out
    lines = command_lines(out)
    assert not any(line.startswith("useradd") for line in lines)
    assert not any("config.json <<" in line for line in lines)
    assert "User=meter\n" in out
    assert "ExecStart=/usr/local/bin/p1mqtt run --config /srv/p1/config.json\n" in out


def test_install_runs_the_plan_in_order(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """As root under systemd: the commands run and the files are written, in the plan's order."""
    host.by_id = ["/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A1-if00-port0"]
    assert main(["service", "install"]) == 0
    assert host.ran == [
        tuple(USERADD.split()),
        ("systemctl", "daemon-reload"),
        ("systemctl", "enable", "--now", "p1mqtt.service"),
    ]
    assert [(path, mode, group) for path, _, mode, group in host.written] == [
        ("/etc/systemd/system/p1mqtt.service", 0o644, None),
        ("/etc/p1mqtt/config.json", 0o640, "p1mqtt"),
    ]
    config = json.loads(host.written[1][1])
    assert config["serial"]["port"] == host.by_id[0]
    out = capsys.readouterr().out
    assert "+ systemctl enable --now p1mqtt.service" in out
    assert "journalctl -u p1mqtt" in out


def test_install_refuses_without_root(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """Not root: a clear refusal naming sudo and --dry-run, and nothing done."""
    host.admin = False
    assert main(["service", "install"]) == 2
    err = capsys.readouterr().err
    assert "needs root: sudo p1mqtt service install" in err
    assert "p1mqtt service install --dry-run" in err
    assert not host.touched


def test_uninstall_refuses_without_root(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """Uninstall needs root too."""
    host.admin = False
    assert main(["service", "uninstall"]) == 2
    assert "needs root: sudo p1mqtt service uninstall" in capsys.readouterr().err
    assert not host.touched


def test_install_refuses_without_systemd(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """No systemd (a container, another init): refused, pointing at print-unit and Docker."""
    host.systemd = False
    assert main(["service", "install"]) == 2
    assert "systemd is not running" in capsys.readouterr().err
    assert not host.touched


def test_install_refuses_a_program_under_home(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """A per-user pipx install is invisible to the service (ProtectHome): refused, with the fix."""
    host.program = "/home/pi/.local/bin/p1mqtt"
    assert main(["service", "install"]) == 2
    assert "pipx install --global" in capsys.readouterr().err
    assert not host.touched
    assert main(["service", "install", "--dry-run"]) == 0
    assert "warning:" in capsys.readouterr().err


def test_a_failing_command_stops_the_plan(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command that fails is reported with its status and nothing after it runs."""
    host.failing.add("systemctl daemon-reload")
    assert main(["service", "install"]) == 2
    assert "`systemctl daemon-reload` failed with exit status 1" in capsys.readouterr().err
    assert host.ran[-1] == ("systemctl", "daemon-reload")


def test_uninstall_dry_run_and_run(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """Uninstall stops and disables, removes the unit, reloads; data and config are kept."""
    assert main(["service", "uninstall", "--dry-run"]) == 0
    assert command_lines(capsys.readouterr().out) == [
        "systemctl disable --now p1mqtt.service || true",
        "rm -f /etc/systemd/system/p1mqtt.service",
        "systemctl daemon-reload",
    ]
    assert not host.touched
    host.failing.add("systemctl disable --now p1mqtt.service")  # not installed: fine
    assert main(["service", "uninstall"]) == 0
    assert host.removed == ["/etc/systemd/system/p1mqtt.service"]
    assert host.ran[-1] == ("systemctl", "daemon-reload")
    assert "kept: the user p1mqtt" in capsys.readouterr().out


def test_serial_group_follows_the_distribution(host: FakeHost) -> None:
    """Where serial ports belong to uucp (Arch), the user joins uucp."""
    host.groups = {"uucp"}
    plan = install_plan(host)
    useradd = plan.steps[0]
    assert isinstance(useradd, service.Command)
    assert useradd.argv[-3:] == ("--groups", "uucp", "p1mqtt")


def test_starter_config_is_a_valid_configuration(host: FakeHost, tmp_path: Path) -> None:
    """The configuration install writes loads without error, on Linux and on Windows."""
    for platform, port in (("linux", "/dev/ttyUSB0"), ("win32", "COM3")):
        host.platform = platform
        path = tmp_path / f"{platform}.json"
        path.write_text(starter_config(host))
        config = load_config(path, env={})
        assert config.serial.port == port
        assert config.mqtt.broker == "mqtt://localhost:1883"


def test_print_unit(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """print-unit shows the unit for the given user and configuration."""
    assert main(["service", "print-unit", "--user", "meter", "--config", "/etc/m.json"]) == 0
    out = capsys.readouterr().out
    assert "User=meter\n" in out
    assert "ExecStart=/usr/local/bin/p1mqtt run --config /etc/m.json\n" in out
    assert not host.touched


def test_windows_install_plan(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """On Windows: a starter config in ProgramData, the pywin32 service, recovery, start."""
    host.platform = "win32"
    host.env = {"PROGRAMDATA": "D:\\Data"}
    assert main(["service", "install", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert command_lines(out) == [
        "sc.exe failure p1mqtt reset= 86400 actions= restart/5000/restart/5000/restart/60000",
        "sc.exe failureflag p1mqtt 1",
        "sc.exe start p1mqtt",
    ]
    assert "rem write D:\\Data\\p1mqtt\\config.json:" in out
    assert "rem install the Windows service 'p1mqtt'" in out
    assert not host.touched
    plan = install_plan(host)
    assert any(isinstance(step, PythonStep) for step in plan.steps)
    assert PureWindowsPath("D:\\Data\\p1mqtt\\config.json") == service.default_config_path(host)


def test_windows_refusals(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """Windows: not elevated is refused; --user does not apply."""
    host.platform = "win32"
    host.admin = False
    assert main(["service", "install"]) == 2
    assert "elevated prompt" in capsys.readouterr().err
    assert main(["service", "install", "--user", "bob", "--dry-run"]) == 2
    assert "--user applies to Linux" in capsys.readouterr().err
    assert not host.touched


def test_windows_uninstall_plan(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """On Windows, uninstall stops the service (if running) and removes it."""
    host.platform = "win32"
    assert main(["service", "uninstall", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert command_lines(out) == ["sc.exe stop p1mqtt || ver>nul"]
    assert "rem remove the Windows service 'p1mqtt'" in out


def test_other_systems_are_refused(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """macOS and others: a clear message, not a half-done install."""
    host.platform = "darwin"
    assert main(["service", "install", "--dry-run"]) == 2
    assert "supports Linux (systemd) and Windows, not darwin" in capsys.readouterr().err
