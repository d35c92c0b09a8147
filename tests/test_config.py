"""The configuration model and its loading: defaults, files, environment, overrides, errors."""

import json
import logging
import os
from pathlib import Path

import pytest

from p1mqtt.config import (
    Config,
    ConfigValidationError,
    check_files,
    environment_variables,
    load_config,
    mask_url_password,
    parse_broker_url,
    section_types,
)
from p1mqtt.config.broker import MASK
from p1mqtt.errors import ConfigError

SECRET = "s3cr3t-Pa55"  # noqa: S105 - a made-up password the tests hunt for


def write_json(tmp_path: Path, data: object, name: str = "p1mqtt.json") -> Path:
    """Write ``data`` as a private JSON config file and return its path."""
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(0o600)
    return path


def errors_of(path: Path | None, **kwargs: object) -> str:
    """The message of the ConfigError that loading raises."""
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as caught:
        load_config(path, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


# --- defaults and files ----------------------------------------------------------------------


def test_empty_object_gives_the_documented_defaults(tmp_path: Path) -> None:
    """`{}` is a valid file and yields every default."""
    config = load_config(write_json(tmp_path, {}), env={})
    assert config == Config()
    assert config.serial.port == "/dev/ttyUSB0"
    assert (config.serial.baudrate, config.serial.bytesize, config.serial.parity) == (
        115200,
        8,
        "N",
    )
    assert config.serial.stopbits == 1
    assert config.meter.timezone == "Europe/Brussels"
    assert config.meter.country == "auto"
    assert config.mqtt.broker == "mqtt://localhost:1883"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.use_tls) == ("localhost", 1883, False)
    assert config.mqtt.qos == 1
    assert config.mqtt.protocol == "3.1.1"
    assert config.topics.prefix == "p1mqtt"
    assert config.filters.include == []
    assert config.logging.level == "INFO"
    assert config.homeassistant.enabled is True
    assert config.homie.enabled is False


def test_no_file_and_no_environment_gives_defaults() -> None:
    """Without a file, only defaults (and the given environment) count."""
    assert load_config(None, env={}) == Config()


def test_json_file_is_read(tmp_path: Path) -> None:
    """A JSON file sets the fields it names and leaves the others at their defaults."""
    path = write_json(
        tmp_path,
        {
            "serial": {"port": "socket://dongle:23", "format": "7E1", "baudrate": 9600},
            "mqtt": {"broker": "mqtts://broker.example.org", "qos": 2, "protocol": 5},
            "filters": {"exclude": ["voltage_*"], "overrides": {"power_*": {"min_interval": 5}}},
        },
    )
    config = load_config(path, env={})
    assert config.serial.port == "socket://dongle:23"
    assert (config.serial.bytesize, config.serial.parity, config.serial.stopbits) == (7, "E", 1)
    assert config.mqtt.port == 8883
    assert config.mqtt.use_tls
    assert config.mqtt.protocol == "5"
    assert config.filters.overrides["power_*"].min_interval == 5
    assert config.filters.overrides["power_*"].on_change is None
    assert config.health.stale_after == 10.0


def test_toml_file_is_read_by_extension(tmp_path: Path) -> None:
    """A file named *.toml is read as TOML."""
    path = tmp_path / "p1mqtt.toml"
    path.write_text(
        '[serial]\nport = "/dev/ttyAMA0"\n\n[mqtt]\nqos = 0\n\n'
        '[filters]\ninclude = ["1-0:1.8.*"]\n\n[filters.overrides."1-0:1.7.0"]\non_change = true\n',
        encoding="utf-8",
    )
    config = load_config(path, env={})
    assert config.serial.port == "/dev/ttyAMA0"
    assert config.mqtt.qos == 0
    assert config.filters.include == ["1-0:1.8.*"]
    assert config.filters.overrides["1-0:1.7.0"].on_change is True


def test_json_schema_key_in_a_file_is_ignored(tmp_path: Path) -> None:
    """A "$schema" key (for editors) is not an unknown key."""
    path = write_json(tmp_path, {"$schema": "./p1mqtt.schema.json", "topics": {"prefix": "p1"}})
    assert load_config(path, env={}).topics.prefix == "p1"


def test_relative_file_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    """password_file, tls and log paths in a file are resolved against its directory."""
    path = write_json(
        tmp_path,
        {
            "mqtt": {"broker": "mqtts://h", "password_file": "secret.txt"},
            "tls": {"cafile": "/etc/ssl/ca.pem"},
            "logging": {"file": "log/p1mqtt.log"},
        },
    )
    config = load_config(path, env={"P1MQTT_TLS_CERT": "client.pem"})
    assert config.mqtt.password_file == tmp_path / "secret.txt"
    assert config.tls.cafile == Path("/etc/ssl/ca.pem")
    assert config.logging.file == tmp_path / "log" / "p1mqtt.log"
    assert config.tls.cert == Path("client.pem")  # not from the file: as given


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    """P1MQTT_CONFIG names the file when no path is given."""
    path = write_json(tmp_path, {"topics": {"prefix": "from-env-file"}})
    config = load_config(None, env={"P1MQTT_CONFIG": str(path)})
    assert config.topics.prefix == "from-env-file"


def test_missing_file_is_named(tmp_path: Path) -> None:
    """A configuration file that does not exist is reported with its name."""
    message = errors_of(tmp_path / "nope.json")
    assert "nope.json" in message
    assert "not found" in message


# --- precedence ------------------------------------------------------------------------------


def test_precedence_defaults_file_environment_overrides(tmp_path: Path) -> None:
    """Each layer wins over the ones below it, field by field."""
    path = write_json(
        tmp_path,
        {"serial": {"port": "/dev/file", "baudrate": 9600}, "mqtt": {"qos": 0, "keepalive": 30}},
    )
    env = {"P1MQTT_SERIAL_PORT": "/dev/env", "P1MQTT_MQTT_QOS": "2"}
    config = load_config(path, env=env, overrides={"serial.port": "/dev/flag"})
    assert config.serial.port == "/dev/flag"  # override > env > file
    assert config.mqtt.qos == 2  # env > file
    assert config.serial.baudrate == 9600  # file > default
    assert config.mqtt.keepalive == 30
    assert config.mqtt.reconnect_delay_max == 60.0  # default


def test_serial_format_in_a_higher_layer_replaces_the_fields_below(tmp_path: Path) -> None:
    """--serial-format 8N1 overrides bytesize/parity from the file instead of clashing."""
    path = write_json(tmp_path, {"serial": {"bytesize": 7, "parity": "E"}})
    config = load_config(path, env={}, overrides={"serial.format": "8n1"})
    assert (config.serial.bytesize, config.serial.parity, config.serial.format) == (8, "N", "8N1")


def test_serial_fields_in_a_higher_layer_replace_the_format_below(tmp_path: Path) -> None:
    """P1MQTT_SERIAL_BYTESIZE wins over a format given in the file."""
    path = write_json(tmp_path, {"serial": {"format": "7E1"}})
    config = load_config(path, env={"P1MQTT_SERIAL_BYTESIZE": "8", "P1MQTT_SERIAL_PARITY": "N"})
    assert (config.serial.bytesize, config.serial.parity, config.serial.format) == (8, "N", None)


def test_contradicting_serial_format_in_one_layer_is_an_error(tmp_path: Path) -> None:
    """format and bytesize that disagree in one file are reported, not silently resolved."""
    path = write_json(tmp_path, {"serial": {"format": "7E1", "bytesize": 8}})
    message = errors_of(path)
    assert "serial.format" in message
    assert "bytesize=8" in message


# --- the environment -------------------------------------------------------------------------


def test_every_field_has_an_environment_variable() -> None:
    """P1MQTT_<SECTION>_<FIELD> exists, unambiguously, for every field of the model."""
    names = environment_variables()
    expected = {
        (section, field)
        for section, model in section_types().items()
        for field in model.model_fields
    }
    assert set(names.values()) == expected
    assert names["P1MQTT_MQTT_PASSWORD"] == ("mqtt", "password")
    assert names["P1MQTT_SERIAL_REOPEN_DELAY_MIN"] == ("serial", "reopen_delay_min")


def test_environment_lists_are_comma_separated() -> None:
    """P1MQTT_FILTERS_INCLUDE is split at commas, spaces and empty items dropped."""
    config = load_config(
        None, env={"P1MQTT_FILTERS_INCLUDE": "1-0:1.8.1, voltage_* ,,power_import"}
    )
    assert config.filters.include == ["1-0:1.8.1", "voltage_*", "power_import"]
    assert load_config(None, env={"P1MQTT_FILTERS_EXCLUDE": ""}).filters.exclude == []


def test_environment_values_are_converted_to_field_types() -> None:
    """Numbers, booleans, literals and JSON objects are read from their text."""
    config = load_config(
        None,
        env={
            "P1MQTT_MQTT_QOS": "0",
            "P1MQTT_SERIAL_BYTESIZE": "7",
            "P1MQTT_MQTT_KEEPALIVE": "120",
            "P1MQTT_HEALTH_STALE_AFTER": "2.5",
            "P1MQTT_TOPICS_RETAIN_READINGS": "false",
            "P1MQTT_HOMIE_ENABLED": "yes",
            "P1MQTT_LOGGING_LEVEL": "debug",
            "P1MQTT_FILTERS_OVERRIDES": '{"voltage_*": {"on_change": true, "heartbeat": 60}}',
            "P1MQTT_MQTT_USERNAME": "",
        },
    )
    assert config.mqtt.qos == 0
    assert config.serial.bytesize == 7
    assert config.mqtt.keepalive == 120
    assert config.health.stale_after == 2.5
    assert config.topics.retain_readings is False
    assert config.homie.enabled is True
    assert config.logging.level == "DEBUG"
    assert config.filters.overrides["voltage_*"].heartbeat == 60
    assert config.mqtt.username is None


def test_unknown_p1mqtt_variable_is_an_error_with_a_suggestion() -> None:
    """A misspelt P1MQTT_ variable is refused, naming the likely intended one."""
    message = errors_of(None, env={"P1MQTT_MQTT_PASWORD": SECRET, "HOME": "/root"})
    assert "P1MQTT_MQTT_PASWORD" in message
    assert "did you mean P1MQTT_MQTT_PASSWORD" in message
    assert SECRET not in message


def test_bad_environment_value_names_the_variable() -> None:
    """A wrong value from the environment names the variable and the field."""
    message = errors_of(None, env={"P1MQTT_MQTT_QOS": "3"})
    assert message == "environment variable P1MQTT_MQTT_QOS: mqtt.qos: expected 0, 1 or 2, got 3"


def test_bad_json_in_an_environment_variable_is_reported() -> None:
    """P1MQTT_FILTERS_OVERRIDES must hold a JSON object."""
    message = errors_of(None, env={"P1MQTT_FILTERS_OVERRIDES": "{voltage: 1}"})
    assert "P1MQTT_FILTERS_OVERRIDES" in message
    assert "expected a JSON object" in message


# --- error messages --------------------------------------------------------------------------


def test_json_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    """A JSON syntax error says where it is."""
    path = tmp_path / "broken.json"
    path.write_text('{\n  "mqtt": {\n    "qos": 1\n    "keepalive": 30\n  }\n}\n', encoding="utf-8")
    message = errors_of(path)
    assert message.startswith(f"{path}: line 4, column 5: invalid JSON")
    assert "Traceback" not in message


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A TOML syntax error says where it is."""
    path = tmp_path / "broken.toml"
    path.write_text("[mqtt]\nqos = \n", encoding="utf-8")
    message = errors_of(path)
    assert message.startswith(f"{path}: line 2, column")
    assert "invalid TOML" in message


def test_duplicate_json_key_is_an_error(tmp_path: Path) -> None:
    """A key given twice is refused rather than silently keeping the last."""
    path = tmp_path / "dup.json"
    path.write_text('{"mqtt": {"qos": 1, "qos": 2}}', encoding="utf-8")
    assert "'qos' is given twice" in errors_of(path)


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    """A JSON file holding a list is refused."""
    assert "expected an object" in errors_of(write_json(tmp_path, [1, 2]))


def test_unknown_key_names_file_and_path_and_suggests(tmp_path: Path) -> None:
    """An unknown key is reported with its dotted path and the likely intended key."""
    path = write_json(tmp_path, {"serial": {"baud_rate": 9600}})
    assert errors_of(path) == (f"{path}: serial.baud_rate: unknown key (did you mean 'baudrate'?)")


def test_unknown_section_is_reported(tmp_path: Path) -> None:
    """An unknown section lists the valid ones when nothing is close."""
    message = errors_of(write_json(tmp_path, {"zzzzzz": {}}))
    assert "zzzzzz: unknown key; expected one of: serial, meter, mqtt" in message


def test_wrong_type_names_file_path_expectation_and_value(tmp_path: Path) -> None:
    """A value of the wrong type says what was expected and what was given."""
    path = write_json(tmp_path, {"serial": {"baudrate": "fast"}})
    message = errors_of(path)
    assert message.startswith(f"{path}: serial.baudrate: expected a valid integer")
    assert message.endswith('got "fast"')


def test_bad_qos_is_reported(tmp_path: Path) -> None:
    """qos must be 0, 1 or 2."""
    path = write_json(tmp_path, {"mqtt": {"qos": 3}})
    assert errors_of(path) == f"{path}: mqtt.qos: expected 0, 1 or 2, got 3"


def test_bad_timezone_is_reported(tmp_path: Path) -> None:
    """An unknown time zone is reported with an example of a good one."""
    path = write_json(tmp_path, {"meter": {"timezone": "Europe/Bruxelles"}})
    message = errors_of(path)
    assert message.startswith(f"{path}: meter.timezone: expected an IANA time zone name")
    assert "Europe/Brussels" in message
    assert '"Europe/Bruxelles"' in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost", "mqtt:// or mqtts://"),
        ("mqtt://", "host name"),
        ("mqtt://host:99999", "port number"),
        ("mqtt://host:abc", "port number"),
        ("mqtt://host/path", "no path"),
        ("localhost:1883", "mqtt:// or mqtts://"),
    ],
)
def test_bad_broker_url_is_reported(tmp_path: Path, url: str, expected: str) -> None:
    """A malformed broker URL says what is expected."""
    path = write_json(tmp_path, {"mqtt": {"broker": url}})
    message = errors_of(path)
    assert message.startswith(f"{path}: mqtt.broker: expected")
    assert expected in message


@pytest.mark.parametrize("prefix", ["", "a/#", "+/x", "/p1", "p1/", "a//b", "$SYS"])
def test_bad_topic_prefix_is_reported(prefix: str) -> None:
    """The prefix must be a plain MQTT topic: no wildcards, no empty or reserved levels."""
    assert "topics.prefix: expected" in errors_of(None, overrides={"topics.prefix": prefix})


def test_bounds_are_reported() -> None:
    """Numeric bounds say what is allowed."""
    message = errors_of(None, overrides={"mqtt.keepalive": 1, "meter.max_telegram_size": 10})
    assert "command line: mqtt.keepalive: expected a number greater than or equal to 5, got 1" in (
        message
    )
    assert "meter.max_telegram_size: expected a number greater than or equal to 64" in message


def test_delay_max_below_min_is_reported() -> None:
    """A backoff whose maximum is below its minimum is refused."""
    message = errors_of(
        None, env={"P1MQTT_SERIAL_REOPEN_DELAY_MIN": "10", "P1MQTT_SERIAL_REOPEN_DELAY_MAX": "5"}
    )
    assert "serial.reopen_delay_max: expected at least reopen_delay_min (10)" in message


def test_tls_settings_need_an_mqtts_broker() -> None:
    """TLS settings with an mqtt:// broker are a mistake worth reporting."""
    message = errors_of(None, env={"P1MQTT_TLS_CAFILE": "/etc/ssl/ca.pem"})
    assert message.startswith("environment variable P1MQTT_TLS_CAFILE: tls: expected an mqtts://")


def test_tls_key_needs_cert() -> None:
    """A client key without its certificate is refused."""
    overrides = {"mqtt.broker": "mqtts://h", "tls.key": "/k.pem"}
    assert "tls.key: expected cert too" in errors_of(None, overrides=overrides)


def test_bad_logging_format_is_reported() -> None:
    """A logging format that cannot format a record is refused at load time."""
    assert "logging.format: expected a logging format" in errors_of(
        None, env={"P1MQTT_LOGGING_FORMAT": "%(nonsense)s"}
    )


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    """Every error, from every layer, is listed, one per line."""
    path = write_json(
        tmp_path,
        {
            "serial": {"baudrate": "fast", "bytesize": 9},
            "mqtt": {"qos": 3, "brokr": "mqtt://x"},
            "meter": {"timezone": "Nowhere/Town"},
            "homie": {"device_id": "Bad Id"},
        },
    )
    with pytest.raises(ConfigValidationError) as caught:
        load_config(path, env={"P1MQTT_SERIAL_PROT": "x", "P1MQTT_MQTT_KEEPALIVE": "0"})
    problems = caught.value.problems
    assert len(problems) == 8
    lines = str(caught.value).splitlines()
    assert lines[0] == "8 configuration errors:"
    assert len(lines) == 9
    for fragment in (
        "P1MQTT_SERIAL_PROT",
        "serial.baudrate",
        "serial.bytesize",
        "mqtt.qos",
        "mqtt.brokr",
        "P1MQTT_MQTT_KEEPALIVE: mqtt.keepalive",
        "meter.timezone",
        "homie.device_id",
    ):
        assert sum(fragment in line for line in lines[1:]) == 1, fragment


def test_section_of_the_wrong_type_is_reported(tmp_path: Path) -> None:
    """A section that is not an object says so."""
    path = write_json(tmp_path, {"health": 5})
    assert (
        errors_of(path) == f"{path}: health: expected an object {{...}} (a [table] in TOML), got 5"
    )


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_never_appear_in_error_messages(tmp_path: Path) -> None:
    """A password in a field, a URL or an unknown key is never repeated in errors."""
    path = write_json(
        tmp_path,
        {
            "mqtt": {
                "broker": f"http://user:{SECRET}@host",
                "password": 12345678,
                "pasword": SECRET,
            },
        },
    )
    message = errors_of(path, env={"P1MQTT_MQTT_PASWORD": SECRET})
    assert SECRET not in message
    assert "12345678" not in message
    assert "mqtt.password: expected a valid string" in message
    assert 'got "http://user:***@host"' in message


def test_secret_from_environment_not_echoed_when_invalid() -> None:
    """An invalid password from the environment is reported without its value."""
    message = errors_of(None, env={"P1MQTT_MQTT_PASSWORD": SECRET, "P1MQTT_MQTT_QOS": SECRET})
    assert "mqtt.qos" in message
    assert message.count(SECRET) == 1  # the qos value, shown; the password never


def test_redacted_masks_every_secret() -> None:
    """redacted() is JSON-able and shows every secret as ***."""
    config = load_config(
        None,
        env={"P1MQTT_MQTT_PASSWORD": SECRET},
        overrides={"mqtt.broker": f"mqtts://me:{SECRET}@broker:8884"},
    )
    data = config.redacted()
    text = json.dumps(data)
    assert SECRET not in text
    assert data["mqtt"]["password"] == MASK
    assert data["mqtt"]["broker"] == "mqtts://me:***@broker:8884"
    assert SECRET not in repr(config)
    assert SECRET not in str(config)


def test_redacted_round_trips_without_secrets(tmp_path: Path) -> None:
    """The redacted dump of a secret-free configuration loads back to the same configuration."""
    config = load_config(None, env={"P1MQTT_SERIAL_FORMAT": "7E1", "P1MQTT_FILTERS_INCLUDE": "a"})
    path = write_json(tmp_path, config.redacted())
    assert load_config(path, env={}) == config


def test_secrets_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Loading a file with a password logs nothing that contains it."""
    path = write_json(tmp_path, {"mqtt": {"broker": f"mqtt://u:{SECRET}@h", "password": SECRET}})
    path.chmod(0o644)
    with caplog.at_level(logging.DEBUG):
        load_config(path, env={})
    assert caplog.records  # the permission warning
    assert SECRET not in caplog.text


# --- MQTT conveniences -----------------------------------------------------------------------


def test_broker_url_parts() -> None:
    """Host, port, TLS and credentials come from the URL, percent-decoded."""
    address = parse_broker_url("mqtts://p1%40home:pa%3Ass@[::1]")
    assert (address.host, address.port, address.use_tls) == ("::1", 8883, True)
    assert (address.username, address.password) == ("p1@home", "pa:ss")
    assert parse_broker_url("MQTT://host:1884").port == 1884


def test_mask_url_password() -> None:
    """A URL's password is masked; URLs without one are unchanged."""
    assert mask_url_password("mqtt://u:p@h:1") == "mqtt://u:***@h:1"
    assert mask_url_password("mqtt://u@h") == "mqtt://u@h"
    assert mask_url_password("mqtt://h") == "mqtt://h"
    assert mask_url_password("u:p@h") == "u:***@h"
    assert mask_url_password("mqtt://u:p@ss@h") == "mqtt://u:***@h"


def test_credentials_precedence(tmp_path: Path) -> None:
    """password field > password_file > URL; username field > URL."""
    secret_file = tmp_path / "password"
    secret_file.write_text("from-file\n", encoding="utf-8")
    url = "mqtt://url-user:from-url@h"
    only_url = load_config(None, env={}, overrides={"mqtt.broker": url})
    assert (only_url.mqtt.resolved_username(), only_url.mqtt.resolved_password()) == (
        "url-user",
        "from-url",
    )
    with_file = load_config(
        None,
        env={},
        overrides={"mqtt.broker": url, "mqtt.password_file": secret_file, "mqtt.username": "me"},
    )
    assert (with_file.mqtt.resolved_username(), with_file.mqtt.resolved_password()) == (
        "me",
        "from-file",
    )
    with_field = load_config(
        None,
        env={"P1MQTT_MQTT_PASSWORD": "from-env"},
        overrides={"mqtt.broker": url, "mqtt.password_file": secret_file},
    )
    assert with_field.mqtt.resolved_password() == "from-env"
    assert load_config(None, env={}).mqtt.resolved_password() is None


def test_unreadable_password_file_is_a_clear_error(tmp_path: Path) -> None:
    """A missing or empty password file raises ConfigError naming it."""
    missing = load_config(None, env={}, overrides={"mqtt.password_file": tmp_path / "none"})
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: .*none does not exist"):
        missing.mqtt.resolved_password()
    empty_file = tmp_path / "empty"
    empty_file.write_text("\n", encoding="utf-8")
    empty = load_config(None, env={}, overrides={"mqtt.password_file": empty_file})
    with pytest.raises(ConfigError, match="is empty"):
        empty.mqtt.resolved_password()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions")
def test_password_file_without_permission(tmp_path: Path) -> None:
    """A password file p1mqtt may not read says how to fix it."""
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET, encoding="utf-8")
    secret_file.chmod(0)
    config = load_config(None, env={}, overrides={"mqtt.password_file": secret_file})
    with pytest.raises(ConfigError, match="permission denied") as caught:
        config.mqtt.resolved_password()
    assert SECRET not in str(caught.value)


def test_client_id_defaults_to_hostname() -> None:
    """client_id None means p1mqtt-<hostname>."""
    assert load_config(None, env={}).mqtt.resolved_client_id().startswith("p1mqtt-")
    config = load_config(None, env={"P1MQTT_MQTT_CLIENT_ID": "meter-1"})
    assert config.mqtt.resolved_client_id() == "meter-1"


# --- file permissions ------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize(
    "mqtt",
    [{"password": SECRET}, {"broker": f"mqtt://user:{SECRET}@host"}],
    ids=["password", "url"],
)
def test_readable_file_with_a_password_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mqtt: dict[str, str]
) -> None:
    """A file holding a password that others can read draws a chmod 600 warning."""
    path = write_json(tmp_path, {"mqtt": mqtt})
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="p1mqtt.config"):
        load_config(path, env={})
    assert len(caplog.records) == 1
    assert str(path) in caplog.text
    assert "chmod 600" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_private_file_or_no_password_does_not_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No warning for a private file, nor for a readable file without a password."""
    private = write_json(tmp_path, {"mqtt": {"password": SECRET}}, "private.json")
    public = write_json(tmp_path, {"mqtt": {"username": "me"}}, "public.json")
    public.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="p1mqtt.config"):
        load_config(private, env={})
        load_config(public, env={})
    assert not caplog.records


# --- file checks -----------------------------------------------------------------------------


def test_check_files_reports_missing_files(tmp_path: Path) -> None:
    """check_files names every referenced file that cannot be read."""
    config = load_config(
        None,
        env={},
        overrides={
            "mqtt.broker": "mqtts://h",
            "mqtt.password_file": tmp_path / "pw",
            "tls.cafile": tmp_path / "ca.pem",
            "logging.file": tmp_path / "no-dir" / "p1mqtt.log",
        },
    )
    problems = check_files(config)
    assert len(problems) == 3
    assert problems[0].startswith("mqtt.password_file:")
    assert problems[1] == f"tls.cafile: {tmp_path / 'ca.pem'}: does not exist"
    assert problems[2].startswith("logging.file: directory")
    assert check_files(Config()) == []


def test_config_is_immutable() -> None:
    """A loaded configuration cannot be changed by accident."""
    config = Config()
    with pytest.raises(ValueError, match="frozen"):
        config.mqtt.qos = 0  # type: ignore[misc]


def test_password_file_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A password file that cannot be read as a file says so, naming it."""
    config = load_config(None, env={}, overrides={"mqtt.password_file": tmp_path})
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: .*: cannot read"):
        config.mqtt.resolved_password()
