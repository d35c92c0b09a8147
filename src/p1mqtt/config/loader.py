"""Loading the configuration: defaults < file < environment < command-line overrides.

Each layer is a ``{section: {field: value}}`` mapping whose leaves remember where they came
from (a file, an environment variable, the command line), so that every error can name its
origin and its dotted path. All errors are collected and raised together as one
:class:`ConfigValidationError`, one per line; a secret's value is never repeated.
"""

import json
import logging
import os
import re
import stat
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from p1mqtt.config.broker import mask_url_password, parse_broker_url
from p1mqtt.config.model import Config, ThrottleOverride, is_secret, section_types
from p1mqtt.errors import ConfigError, UsageError

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "ConfigValidationError",
    "check_files",
    "environment_variables",
    "load_config",
    "resolve_config_path",
]

logger = logging.getLogger(__name__)

ENV_PREFIX = "P1MQTT_"
"""Every environment variable p1mqtt reads starts with this."""
CONFIG_ENV = "P1MQTT_CONFIG"
"""Names the configuration file when none is given on the command line."""

COMMAND_LINE = "command line"
_GOT_LIMIT = 80
# Setting one of these in a layer replaces the other(s) from the layers below it.
_LINKED_FIELDS = {("serial", "format"): ("bytesize", "parity", "stopbits")}

_Tree: TypeAlias = dict[str, Any]
_Sources: TypeAlias = dict[tuple[str, ...], str]


class ConfigValidationError(ConfigError):
    """The configuration has one or more errors; ``problems`` holds one line for each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            lines = "\n".join(f"  {problem}" for problem in self.problems)
            message = f"{len(self.problems)} configuration errors:\n{lines}"
        super().__init__(message)


def load_config(
    path: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Build the configuration from the defaults, ``path``, ``env`` and ``overrides``.

    ``path`` None means the file named by ``$P1MQTT_CONFIG``, else no file. ``env`` defaults to
    ``os.environ``. ``overrides`` maps dotted paths (``"serial.port"``) to values, as the
    command-line flags give them. Raises :class:`ConfigError` naming every problem.
    """
    environ = os.environ if env is None else env
    path = resolve_config_path(path, environ)
    merged: _Tree = {}
    sources: _Sources = {}
    if path is not None:
        data = _read_file(path)
        _warn_if_readable_secret(path, data)
        _merge(merged, sources, data, _labels(data, str(path)))
    env_data, env_sources, problems = _environment_layer(environ)
    _merge(merged, sources, env_data, env_sources)
    if overrides:
        override_data = _nest(overrides)
        _merge(merged, sources, override_data, _labels(override_data, COMMAND_LINE))
    fallback = str(path) if path is not None else "configuration"
    try:
        config = Config.model_validate(merged)
    except ValidationError as error:
        problems += [_describe(detail, sources, fallback) for detail in error.errors()]
    if problems:
        raise ConfigValidationError(problems)
    return config


def resolve_config_path(path: Path | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file to read: ``path``, else ``$P1MQTT_CONFIG``, else None."""
    if path is not None:
        return path
    named = (os.environ if env is None else env).get(CONFIG_ENV, "")
    return Path(named) if named else None


def environment_variables() -> dict[str, tuple[str, str]]:
    """Every ``P1MQTT_<SECTION>_<FIELD>`` variable, mapped to its (section, field)."""
    names: dict[str, tuple[str, str]] = {}
    for section, model in section_types().items():
        for field in model.model_fields:
            name = f"{ENV_PREFIX}{section}_{field}".upper()
            if name in names or name == CONFIG_ENV:  # pragma: no cover - a model design error
                raise TypeError(f"environment variable {name} would be ambiguous")
            names[name] = (section, field)
    return names


def check_files(config: Config) -> list[str]:
    """Problems with the files the configuration names (unreadable, missing); empty if none."""
    problems = []
    if config.mqtt.password_file is not None:
        try:
            config.mqtt.resolved_password()
        except ConfigError as error:
            problems.append(str(error))
    for name in ("cafile", "cert", "key"):
        file = getattr(config.tls, name)
        if file is not None and (problem := _unreadable(file)):
            problems.append(f"tls.{name}: {file}: {problem}")
    log_file = config.logging.file
    if log_file is not None and not log_file.absolute().parent.is_dir():
        problems.append(f"logging.file: directory {log_file.absolute().parent} does not exist")
    return problems


def _unreadable(path: Path) -> str | None:
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except FileNotFoundError:
        return "does not exist"
    except OSError as error:
        return f"cannot read: {error.strerror}"
    return None


# --- the file layer --------------------------------------------------------------------------


def _read_file(path: Path) -> _Tree:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read configuration file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: byte {error.start}: not UTF-8 text") from None
    data = _parse_toml(path, text) if path.suffix.lower() == ".toml" else _parse_json(path, text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object {{...}} at the top level")
    data.pop("$schema", None)  # lets editors find docs/p1mqtt.schema.json
    return _resolve_paths(data, path)


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path}: line {error.lineno}, column {error.colno}: invalid JSON: {error.msg}"
        ) from None
    except _DuplicateKeyError as error:
        raise ConfigError(f"{path}: key {error.args[0]!r} is given twice in one object") from None


class _DuplicateKeyError(Exception):
    """A JSON object names a key twice (JSON would silently keep the last)."""


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _parse_toml(path: Path, text: str) -> Any:
    import tomllib  # noqa: PLC0415 - only for TOML files: not kept in memory by `run` otherwise

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if where is None:  # pragma: no cover - tomllib always says where
            raise ConfigError(f"{path}: invalid TOML: {message}") from None
        raise ConfigError(
            f"{path}: line {where[1]}, column {where[2]}: invalid TOML: {message[: where.start()]}"
        ) from None


def _resolve_paths(data: _Tree, config_file: Path) -> _Tree:
    """Make relative file paths in the file relative to the file's own directory."""
    base = config_file.absolute().parent
    for section, field in _path_fields():
        values = data.get(section)
        if isinstance(values, dict) and isinstance(values.get(field), str) and values[field]:
            given = Path(values[field]).expanduser()
            values[field] = str(given if given.is_absolute() else base / given)
    return data


def _path_fields() -> Iterable[tuple[str, str]]:
    for section, model in section_types().items():
        for name, field in model.model_fields.items():
            if Path in (field.annotation, *get_args(field.annotation)):
                yield section, name


def _warn_if_readable_secret(path: Path, data: _Tree) -> None:
    mqtt = data.get("mqtt")
    if os.name != "posix" or not isinstance(mqtt, dict) or not _holds_password(mqtt):
        return
    try:
        mode = path.stat().st_mode
    except OSError:  # pragma: no cover - it was just read
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning(
            "%s holds an MQTT password and can be read by other users; "
            "make it private with: chmod 600 %s",
            path,
            path,
        )


def _holds_password(mqtt: Mapping[str, Any]) -> bool:
    if mqtt.get("password"):
        return True
    broker = mqtt.get("broker")
    if not isinstance(broker, str):
        return False
    try:
        return bool(parse_broker_url(broker).password)
    except ValueError:
        return mask_url_password(broker) != broker


# --- the environment layer -------------------------------------------------------------------


def _environment_layer(env: Mapping[str, str]) -> tuple[_Tree, _Sources, list[str]]:
    known = environment_variables()
    data: _Tree = {}
    sources: _Sources = {}
    problems = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        if name not in known:
            problems.append(_unknown_variable(name, known))
            continue
        section, field = known[name]
        try:
            value = _decode_env_value(section, field, env[name])
        except ValueError as error:
            problems.append(f"environment variable {name}: {section}.{field}: {error}")
            continue
        data.setdefault(section, {})[field] = value
        sources[(section, field)] = f"environment variable {name}"
    return data, sources, problems


def _unknown_variable(name: str, known: Iterable[str]) -> str:
    import difflib  # noqa: PLC0415 - only on a mistake: not kept in memory by `run` otherwise

    close = difflib.get_close_matches(name, [*known, CONFIG_ENV], n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"environment variable {name}: unknown p1mqtt setting{hint}"


def _decode_env_value(section: str, field: str, raw: str) -> object:
    """Turn a variable's text into what the field takes: lists split at commas, etc."""
    annotation = section_types()[section].model_fields[field].annotation
    options = _union_members(annotation)
    if type(None) in options and not raw.strip():
        return None
    base = next((option for option in options if option is not type(None)), annotation)
    origin = get_origin(base)
    if origin is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if origin is dict:
        return _decode_json_object(raw)
    if origin is Literal and all(isinstance(choice, int) for choice in get_args(base)):
        return int(raw) if re.fullmatch(r"\s*-?\d+\s*", raw) else raw
    return raw


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _decode_json_object(raw: str) -> object:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"expected a JSON object: {error.msg} at column {error.colno}") from None
    return value  # anything but an object is reported by the model, with what was given


# --- merging and error messages ---------------------------------------------------------------


def _nest(overrides: Mapping[str, object]) -> _Tree:
    data: _Tree = {}
    for dotted, value in overrides.items():
        section, dot, field = dotted.partition(".")
        if not dot:
            data[section] = value
        elif "." in field or not field:
            raise UsageError(f"override {dotted!r}: expected section.field")
        else:
            data.setdefault(section, {})[field] = value
    return data


def _labels(data: _Tree, label: str) -> _Sources:
    labels: _Sources = {}
    for section, values in data.items():
        labels[(section,)] = label
        if isinstance(values, dict):
            labels.update({(section, field): label for field in values})
    return labels


def _merge(merged: _Tree, sources: _Sources, layer: _Tree, layer_sources: _Sources) -> None:
    """Lay ``layer`` over ``merged``, field by field, remembering where each came from."""
    for section, values in layer.items():
        below = merged.get(section)
        if isinstance(below, dict) and isinstance(values, dict):
            _drop_superseded(section, values, below, sources)
            below.update(values)
        elif below is None or not isinstance(values, dict):
            merged[section] = values
        else:  # a lower layer gave a non-object: keep it so that it is reported
            continue
        sources.update({key: label for key, label in layer_sources.items() if key[0] == section})


def _drop_superseded(section: str, values: _Tree, below: _Tree, sources: _Sources) -> None:
    for (linked_section, shorthand), longhands in _LINKED_FIELDS.items():
        if section != linked_section:
            continue
        if shorthand in values:
            superseded: Iterable[str] = longhands
        elif any(name in values for name in longhands):
            superseded = (shorthand,)
        else:
            continue
        for name in superseded:
            below.pop(name, None)
            sources.pop((section, name), None)


def _describe(detail: ErrorDetails, sources: _Sources, fallback: str) -> str:
    """One line for one validation error: origin, dotted path, expectation, given value."""
    loc = tuple(str(part) for part in detail["loc"])
    origin = _origin(loc, sources, fallback)
    message = _expectation(detail, loc)
    got = _shown_input(detail, loc)
    if got is not None:
        message = f"{message}, got {got}"
    return f"{origin}: {'.'.join(loc)}: {message}" if loc else f"{origin}: {message}"


def _origin(loc: tuple[str, ...], sources: _Sources, fallback: str) -> str:
    for end in range(len(loc), 0, -1):
        if loc[:end] in sources:
            return sources[loc[:end]]
    inside = dict.fromkeys(label for key, label in sources.items() if key[: len(loc)] == loc)
    return " and ".join(inside) or fallback


_EXPECTATIONS = {
    "dict_type": "expected an object {...} (a [table] in TOML)",
    "model_type": "expected an object {...} (a [table] in TOML)",
    "model_attributes_type": "expected an object {...} (a [table] in TOML)",
    "path_type": "expected a file path",
    "list_type": "expected a list [...]",
}


def _expectation(detail: ErrorDetails, loc: tuple[str, ...]) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind in _EXPECTATIONS:
        return _EXPECTATIONS[kind]
    message = detail["msg"].removeprefix("Value error, ")
    if kind.startswith(("greater_than", "less_than")):
        return "expected a number " + message.removeprefix("Input should be ")
    if kind == "string_too_short":
        return "expected a non-empty string"
    if message.startswith("Input should be "):
        return "expected " + message.removeprefix("Input should be ")
    return message


def _unknown_key(loc: tuple[str, ...]) -> str:
    import difflib  # noqa: PLC0415 - only on a mistake: not kept in memory by `run` otherwise

    valid = _valid_keys(loc[:-1])
    close = difflib.get_close_matches(loc[-1], valid, n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key; expected one of: {', '.join(valid)}"


def _valid_keys(parent: tuple[str, ...]) -> list[str]:
    if not parent:
        return list(Config.model_fields)
    if parent[:2] == ("filters", "overrides"):
        return list(ThrottleOverride.model_fields)
    section = section_types().get(parent[0])
    return list(section.model_fields) if section is not None else []


def _shown_input(detail: ErrorDetails, loc: tuple[str, ...]) -> str | None:
    """The given value as it may be shown, or None when it must not or need not be."""
    value = detail.get("input")
    if detail["type"] == "extra_forbidden" or not loc or _is_secret_path(loc):
        return None
    if isinstance(value, str) and loc[:2] == ("mqtt", "broker"):
        value = mask_url_password(value)
    if not isinstance(value, str | int | float | bool | list) and value is not None:
        return None
    shown = json.dumps(value, ensure_ascii=False, default=str)
    return shown if len(shown) <= _GOT_LIMIT else shown[: _GOT_LIMIT - 3] + "..."


def _is_secret_path(loc: tuple[str, ...]) -> bool:
    if len(loc) < 2:
        return False
    model: type[BaseModel] | None = section_types().get(loc[0])
    field = model.model_fields.get(loc[1]) if model is not None else None
    return field is not None and is_secret(field.annotation)
