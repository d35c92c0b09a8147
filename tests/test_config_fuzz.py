"""Fuzzing the configuration loader: whatever the file or environment holds, the outcome is a
:class:`Config` or a :class:`ConfigError` naming the problem, never another exception (which the
CLI would show as a traceback) and never a message repeating a password.

``HYPOTHESIS_PROFILE=long`` runs thousands of examples; ``bench/fuzz.py config`` runs for as
long as you like.
"""

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from p1mqtt.config import Config, environment_variables, load_config, section_types
from p1mqtt.errors import ConfigError
from strategies import SETTINGS

SECRET = "pw-Zq8vX3kT"  # noqa: S105 - a marker to look for in messages, not a credential
"""A password only the fuzzer places (in mqtt.password and the broker URL)."""


def texts(max_size: int, alphabet: str | None = None) -> st.SearchStrategy[str]:
    """Any text but the password (hypothesis also draws string constants from the code)."""
    strategy = (
        st.text(max_size=max_size) if alphabet is None else st.text(alphabet, max_size=max_size)
    )
    return strategy.map(lambda text: text.replace(SECRET, "?"))


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts(30),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts(12), children, max_size=4)
    ),
    max_leaves=20,
)
"""Anything JSON can hold (NaN and Infinity included: Python's json reads them)."""

_SECTIONS = {name: list(model.model_fields) for name, model in section_types().items()}
_LIKELY_TEXT = st.sampled_from(
    [
        "",
        "Europe",
        "Europe/Brussels",
        "UTC",
        "../..",
        "8N1",
        "7e1",
        "9O2",
        "mqtt://host",
        "mqtt://host:0",
        "mqtt://[::1]:1883",
        "socket://127.0.0.1:8088",
        "/dev/ttyUSB0",
        "DEBUG",
        "warning",
        "%(message)s",
        "%(nope)s",
        "%",
        "p1/+",
        "a/#",
        "1-0:1.8.*",
        "\x00",
        "5",
        "3.1.1",
        "1e400",
        "-1",
        "NaN",
    ]
)
FIELD_VALUES = st.one_of(JSON_VALUES, _LIKELY_TEXT, st.lists(_LIKELY_TEXT, max_size=3))
SECRET_URLS = st.sampled_from(
    [
        f"mqtts://user:{SECRET}@host:8883",
        f"mqtt://user:{SECRET}@host:0",
        f"mqtt://user:{SECRET}@host:99999/path",
        f"user:{SECRET}@host",
        f"http://user:{SECRET}@host",
        f"mqtt://user:{SECRET}@",
        f"mqtt://:{SECRET}@host",
        f"mqtt://user:{SECRET}@[::1",
    ]
)
"""Broker URLs carrying the password, valid and not: the password must never be shown."""


@st.composite
def shaped_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Documents with real section and field names (and some wrong ones), any values."""
    document: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from([*_SECTIONS, "mqqt", "$schema"]), max_size=5)):
        fields = _SECTIONS.get(section, ["x"])
        names = draw(st.lists(st.sampled_from([*fields, "enable", ""]), max_size=5))
        document[section] = (
            {name: draw(FIELD_VALUES) for name in names}
            if draw(st.integers(0, 9))
            else draw(JSON_VALUES)
        )
    mqtt = document.setdefault("mqtt", {})
    if isinstance(mqtt, dict):
        if draw(st.booleans()):
            mqtt["password"] = draw(st.sampled_from([SECRET, [SECRET], {"a": SECRET}, 1]))
        if draw(st.booleans()):
            mqtt["broker"] = draw(SECRET_URLS)
    return document


def outcome(path: Path | None, env: dict[str, str] | None = None) -> Config | ConfigError:
    """Load; return the Config or the ConfigError, letting anything else fail the test."""
    try:
        config = load_config(path, env=env or {})
    except ConfigError as error:
        message = str(error)
        assert message.strip()
        assert SECRET not in message, message
        return error
    assert isinstance(config, Config)
    assert SECRET not in json.dumps(config.redacted())
    return config


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the fuzzed files (one per test, rewritten for every example)."""
    return tmp_path_factory.mktemp("config-fuzz")


@SETTINGS
@given(
    data=st.binary(max_size=600).map(lambda data: data.replace(SECRET.encode(), b"?")),
    suffix=st.sampled_from([".json", ".toml", ".conf"]),
)
@example(data=b"\xef\xbb\xbf{}", suffix=".json")
@example(data=b"\xff\xfe{", suffix=".json")
@example(data=b"[mqtt]\nqos = 1\nqos = 2\n", suffix=".toml")
@example(data=b'{"a": 1, "a": 2}', suffix=".json")
@example(data=b'{"meter": {"timezone": "Europe"}}', suffix=".json")
def test_any_bytes_as_a_config_file_load_or_raise_config_error(
    scratch: Path, data: bytes, suffix: str
) -> None:
    """Arbitrary bytes in a JSON or TOML file: a Config or a ConfigError, nothing else."""
    path = scratch / f"bytes{suffix}"
    path.write_bytes(data)
    outcome(path)


@SETTINGS
@given(document=JSON_VALUES)
def test_any_json_document_loads_or_raises_config_error(scratch: Path, document: Any) -> None:
    """Any JSON value as the whole file: a Config or a ConfigError."""
    path = scratch / "any.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    outcome(path)


@SETTINGS
@given(document=shaped_documents())
@example(document={"meter": {"timezone": "Europe"}})
@example(document={"serial": {"format": "7E1", "bytesize": 8}})
@example(document={"mqtt": {"broker": f"mqtt://u:{SECRET}@h:99999", "password": [SECRET]}})
@example(document={"logging": {"format": "%(nope)s"}})
def test_documents_shaped_like_the_schema_load_or_raise_config_error(
    scratch: Path, document: dict[str, Any]
) -> None:
    """Real section and field names with any values: a Config or a ConfigError, no secret shown."""
    path = scratch / "shaped.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    path.chmod(0o600)
    outcome(path)


_VARIABLES = sorted(environment_variables())
_ENV_TEXT = st.one_of(_LIKELY_TEXT, texts(20, string.printable))


@SETTINGS
@given(
    env=st.dictionaries(
        st.sampled_from([*_VARIABLES, "P1MQTT_MQTT_PASSWROD", "P1MQTT_CONFIG"]),
        _ENV_TEXT,
        max_size=6,
    ),
    password=st.booleans(),
    broker=st.none() | SECRET_URLS,
)
@example(env={"P1MQTT_METER_TIMEZONE": "Europe"}, password=False, broker=None)
@example(env={"P1MQTT_FILTERS_OVERRIDES": "[1]"}, password=False, broker=None)
@example(env={"P1MQTT_MQTT_PASSWROD": SECRET}, password=False, broker=None)
def test_any_environment_loads_or_raises_config_error(
    scratch: Path, env: dict[str, str], password: bool, broker: str | None
) -> None:
    """Any P1MQTT_* variables with any text: a Config or a ConfigError, no secret shown."""
    if password:
        env["P1MQTT_MQTT_PASSWORD"] = SECRET
    if broker is not None:
        env["P1MQTT_MQTT_BROKER"] = broker
    if "P1MQTT_CONFIG" in env:  # point it at a fuzzed but existing file
        named = scratch / "from-env.json"
        named.write_text(json.dumps({"mqtt": {"qos": env["P1MQTT_CONFIG"]}}), encoding="utf-8")
        env = {**env, "P1MQTT_CONFIG": str(named)}
    outcome(None, env)
