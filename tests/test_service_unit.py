"""The systemd unit file shipped with the package, rendered by ``p1mqtt service``."""

import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from p1mqtt.commands.service import render_unit, unit_template

CONFIG = PurePosixPath("/etc/p1mqtt/config.json")


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file, each key with all its values (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"assignment outside a section: {line!r}"
        key, separator, value = line.partition("=")
        assert separator, f"not an assignment: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


def rendered(exec_start: str = "/usr/local/bin/p1mqtt") -> str:
    """The unit for the default user and configuration."""
    return render_unit(exec_start, user="p1mqtt", config=CONFIG, serial_group="dialout")


def test_template_ships_as_package_data() -> None:
    """The template is read through importlib.resources and has every placeholder."""
    template = unit_template()
    for placeholder in ("${exec_start}", "${config}", "${user}", "${serial_group}"):
        assert placeholder in template


def test_unit_structure() -> None:
    """Type=notify with a watchdog, restart on failure, a dedicated user, the network first."""
    text = rendered()
    assert "${" not in text and "$" not in text
    unit = parse_unit(text)
    assert set(unit) == {"Unit", "Service", "Install"}
    assert unit["Unit"]["After"] == ["network-online.target"]
    assert unit["Unit"]["Wants"] == ["network-online.target"]
    service = {key: values[-1] for key, values in unit["Service"].items()}
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "60",
        "Restart": "on-failure",
        "RestartSec": "5",
        "User": "p1mqtt",
        "SupplementaryGroups": "dialout",
        "StateDirectory": "p1mqtt",
        "ConfigurationDirectory": "p1mqtt",
        "ExecStart": "/usr/local/bin/p1mqtt run --config /etc/p1mqtt/config.json",
    }
    assert {key: service.get(key) for key in expected} == expected
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_unit_hardening() -> None:
    """The usual hardening, with serial character devices still reachable."""
    service = parse_unit(rendered())["Service"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "DevicePolicy": "closed",
        "CapabilityBoundingSet": "",
    }.items():
        assert service.get(key) == [value], key
    assert {"char-ttyUSB rw", "char-ttyACM rw"} <= set(service["DeviceAllow"])
    # PrivateDevices=yes would hide /dev/ttyUSB0 and the /dev/serial/by-id links.
    assert "PrivateDevices" not in service


def test_exec_start_quotes_awkward_paths() -> None:
    """A configuration path with a space is quoted and '%' is escaped for systemd."""
    text = render_unit(
        "/usr/local/bin/p1mqtt",
        user="meter",
        config=PurePosixPath("/srv/my meter/100%.json"),
        serial_group="uucp",
    )
    service = parse_unit(text)["Service"]
    assert service["ExecStart"] == ['/usr/local/bin/p1mqtt run --config "/srv/my meter/100%%.json"']
    assert service["User"] == ["meter"]
    assert service["SupplementaryGroups"] == ["uucp"]


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing to say about the unit (no unknown keys, valid)."""
    # ExecStart must name an existing program: this interpreter.
    unit_file = tmp_path / "p1mqtt.service"
    unit_file.write_text(rendered(f"{sys.executable} -m p1mqtt"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [line for line in result.stderr.splitlines() if "p1mqtt.service" in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []
