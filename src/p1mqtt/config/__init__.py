"""The configuration of p1mqtt: the typed model, its loading, and its JSON Schema.

``load_config(path, env=..., overrides=...)`` builds a :class:`Config` from, in rising
precedence, the model's defaults, a JSON or TOML file, ``P1MQTT_<SECTION>_<FIELD>`` environment
variables and command-line overrides, and raises :class:`~p1mqtt.errors.ConfigError` naming
every problem with its origin and dotted path. See ``docs/configuration.md``.
"""

from p1mqtt.config.broker import BrokerAddress, mask_url_password, parse_broker_url
from p1mqtt.config.loader import (
    CONFIG_ENV,
    ENV_PREFIX,
    ConfigValidationError,
    check_files,
    environment_variables,
    load_config,
    resolve_config_path,
)
from p1mqtt.config.model import (
    CapacityConfig,
    Config,
    FiltersConfig,
    HealthConfig,
    HomeAssistantConfig,
    HomieConfig,
    LoggingConfig,
    MeterConfig,
    MqttConfig,
    SerialConfig,
    StorageConfig,
    ThrottleOverride,
    TlsConfig,
    TopicsConfig,
    TotalsConfig,
    section_types,
)
from p1mqtt.config.schema import json_schema, schema_text

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "BrokerAddress",
    "CapacityConfig",
    "Config",
    "ConfigValidationError",
    "FiltersConfig",
    "HealthConfig",
    "HomeAssistantConfig",
    "HomieConfig",
    "LoggingConfig",
    "MeterConfig",
    "MqttConfig",
    "SerialConfig",
    "StorageConfig",
    "ThrottleOverride",
    "TlsConfig",
    "TopicsConfig",
    "TotalsConfig",
    "check_files",
    "environment_variables",
    "json_schema",
    "load_config",
    "mask_url_password",
    "parse_broker_url",
    "resolve_config_path",
    "schema_text",
    "section_types",
]
