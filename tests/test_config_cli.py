"""``p1mqtt check-config`` and the configuration flags shared by run, dump and demo."""

import argparse
import json
import logging
import os
from pathlib import Path

import pytest

from p1mqtt.cli import main
from p1mqtt.commands.options import (
    add_config_arguments,
    load_config_from_args,
    overrides_from_args,
)
from p1mqtt.config import Config, load_config, schema_text
from p1mqtt.config.broker import MASK

SECRET = "s3cr3t-Pa55"  # noqa: S105 - a made-up password the tests hunt for


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No P1MQTT_ variable of the test runner leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("P1MQTT_"):
            monkeypatch.delenv(name)


def write_json(tmp_path: Path, data: object, name: str = "p1mqtt.json") -> Path:
    """Write ``data`` as a private JSON config file and return its path."""
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(0o600)
    return path


def parse(*argv: str, include_mqtt: bool = True) -> argparse.Namespace:
    """Parse ``argv`` with the shared configuration flags."""
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, include_mqtt=include_mqtt)
    return parser.parse_args(argv)


# --- check-config ----------------------------------------------------------------------------


def test_check_config_valid_file_prints_effective_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A valid file: exit 0, "FILE: configuration is valid", then the configuration as JSON."""
    path = write_json(tmp_path, {"serial": {"port": "/dev/ttyAMA0"}})
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    first, _, rest = out.partition("\n")
    assert first == f"{path}: configuration is valid"
    shown = json.loads(rest)
    assert shown["serial"]["port"] == "/dev/ttyAMA0"
    assert shown["mqtt"]["qos"] == 1


def test_check_config_without_file_checks_defaults_and_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No FILE and no P1MQTT_CONFIG: the defaults and environment are checked."""
    monkeypatch.setenv("P1MQTT_TOPICS_PREFIX", "home/p1")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "configuration is valid" in out
    assert json.loads(out.partition("\n")[2])["topics"]["prefix"] == "home/p1"


def test_check_config_uses_p1mqtt_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without FILE, the file named by P1MQTT_CONFIG is checked and named."""
    path = write_json(tmp_path, {})
    monkeypatch.setenv("P1MQTT_CONFIG", str(path))
    assert main(["check-config"]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: configuration is valid\n")


def test_check_config_invalid_file_exits_2_with_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid file: exit 2, every error on stderr with file and path, nothing on stdout."""
    path = write_json(tmp_path, {"mqtt": {"qos": 5}, "serial": {"bytesize": 6}})
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}: mqtt.qos: expected 0, 1 or 2, got 5" in captured.err
    assert f"{path}: serial.bytesize: expected 7 or 8, got 6" in captured.err
    assert "Traceback" not in captured.err


def test_check_config_json_syntax_error_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON syntax error: exit 2, file, line and column on stderr."""
    path = tmp_path / "broken.json"
    path.write_text('{"mqtt": {"qos": 1,}}', encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    assert f"{path}: line 1, column 20: invalid JSON" in capsys.readouterr().err


def test_check_config_reports_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files the configuration names (password, certificates) must exist."""
    path = write_json(
        tmp_path, {"mqtt": {"broker": "mqtts://h", "password_file": "pw"}, "tls": {"cafile": "ca"}}
    )
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "mqtt.password_file" in err
    assert "tls.cafile" in err


def test_check_config_never_shows_secrets(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Passwords from the file, the URL, the environment or a password file are never shown."""
    password_file = tmp_path / "pw"
    password_file.write_text(SECRET + "-file\n", encoding="utf-8")
    path = write_json(
        tmp_path,
        {"mqtt": {"broker": f"mqtt://me:{SECRET}-url@h", "password_file": "pw"}},
    )
    path.chmod(0o644)
    monkeypatch.setenv("P1MQTT_MQTT_PASSWORD", SECRET)
    with caplog.at_level(logging.DEBUG):
        assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    shown = json.loads(captured.out.partition("\n")[2])
    assert shown["mqtt"]["password"] == MASK
    assert shown["mqtt"]["broker"] == "mqtt://me:***@h"
    for text in (captured.out, captured.err, caplog.text):
        assert SECRET not in text


def test_check_config_errors_never_show_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid broker URL with a password is shown masked in the error."""
    path = write_json(tmp_path, {"mqtt": {"broker": f"tcp://me:{SECRET}@h", "password": 1}})
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert "tcp://me:***@h" in captured.err
    assert SECRET not in captured.out + captured.err


def test_check_config_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """--schema prints the JSON Schema, exit 0."""
    assert main(["check-config", "--schema"]) == 0
    out = capsys.readouterr().out
    assert out == schema_text()
    schema = json.loads(out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert "mqtt" in schema["properties"]


# --- shared flags ----------------------------------------------------------------------------


def test_only_given_flags_become_overrides() -> None:
    """Flags not on the command line leave the file and environment in charge."""
    args = parse()
    assert overrides_from_args(args) == {}
    assert args.config is None


def test_flags_map_to_dotted_paths() -> None:
    """Each flag overrides its field, with the field's type."""
    args = parse(
        "--config", "p1.json",
        "--port", "/dev/ttyUSB1",
        "--baudrate", "9600",
        "--serial-format", "7E1",
        "--timezone", "Europe/Amsterdam",
        "--broker", "mqtts://broker:8884",
        "--username", "me",
        "--password-file", "/run/secrets/mqtt",
        "--client-id", "meter",
        "--keepalive", "30",
        "--mqtt-version", "5",
        "--qos", "2",
        "--cafile", "ca.pem",
        "--cert", "client.pem",
        "--key", "client.key",
        "--insecure",
        "--prefix", "home/p1",
        "--log-level", "debug",
        "--log-file", "p1.log",
    )  # fmt: skip
    assert args.config == Path("p1.json")
    assert overrides_from_args(args) == {
        "serial.port": "/dev/ttyUSB1",
        "serial.baudrate": 9600,
        "serial.format": "7E1",
        "meter.timezone": "Europe/Amsterdam",
        "mqtt.broker": "mqtts://broker:8884",
        "mqtt.username": "me",
        "mqtt.password_file": Path("/run/secrets/mqtt"),
        "mqtt.client_id": "meter",
        "mqtt.keepalive": 30,
        "mqtt.protocol": "5",
        "mqtt.qos": 2,
        "tls.cafile": Path("ca.pem"),
        "tls.cert": Path("client.pem"),
        "tls.key": Path("client.key"),
        "tls.insecure": True,
        "topics.prefix": "home/p1",
        "logging.level": "DEBUG",
        "logging.file": Path("p1.log"),
    }
    config = load_config(None, env={}, overrides=overrides_from_args(args))
    assert config.mqtt.protocol == "5"
    assert config.serial.parity == "E"


def test_flags_override_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_config_from_args: flags > environment > file."""
    path = write_json(tmp_path, {"serial": {"port": "/dev/file"}, "mqtt": {"qos": 0}})
    monkeypatch.setenv("P1MQTT_SERIAL_PORT", "/dev/env")
    monkeypatch.setenv("P1MQTT_MQTT_KEEPALIVE", "90")
    config = load_config_from_args(parse("--config", str(path), "--port", "/dev/flag"))
    assert config.serial.port == "/dev/flag"
    assert config.mqtt.keepalive == 90
    assert config.mqtt.qos == 0


def test_there_is_no_password_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """--password is refused with the reason, not taken as short for --password-file."""
    with pytest.raises(SystemExit):
        parse("--password", SECRET)
    err = capsys.readouterr().err
    assert "other users can read a command line" in err
    assert "--password-file" in err
    assert SECRET not in err
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    assert "other users can see a command line" in " ".join(parser.format_help().split())


def test_include_mqtt_false_leaves_out_broker_flags() -> None:
    """dump has no broker: its parser has the serial and logging flags only."""
    args = parse("--port", "COM3", "--log-level", "WARNING", include_mqtt=False)
    assert overrides_from_args(args) == {"serial.port": "COM3", "logging.level": "WARNING"}
    with pytest.raises(SystemExit):
        parse("--broker", "mqtt://x", include_mqtt=False)


def test_help_shows_model_defaults() -> None:
    """--help shows each flag's default as the model defines it."""
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    text = " ".join(parser.format_help().split())
    defaults = Config()
    assert f"(default: {defaults.serial.port})" in text
    assert f"(default: {defaults.mqtt.broker})" in text
    assert "(default: 8N1)" in text
