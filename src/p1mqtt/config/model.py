"""The configuration model: one pydantic class per section, every default in one place.

The model is pure: validating it touches no file and no network (paths are checked by
:func:`p1mqtt.config.loader.check_files`, the password file is read only when asked for).
Every field carries a ``description``, which the JSON Schema and the editor help are made of.
"""

import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from p1mqtt.config.broker import MASK, mask_url_password, parse_broker_url
from p1mqtt.errors import ConfigError

__all__ = [
    "Config",
    "FiltersConfig",
    "HealthConfig",
    "HomeAssistantConfig",
    "HomieConfig",
    "LoggingConfig",
    "MeterConfig",
    "MqttConfig",
    "SerialConfig",
    "ThrottleOverride",
    "TlsConfig",
    "TopicsConfig",
    "is_secret",
    "section_types",
]

_SECTION_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
_SERIAL_FORMAT = re.compile(r"([78])([NEO])([12])", re.IGNORECASE)
_SERIAL_PARTS = ("bytesize", "parity", "stopbits")
_HOMIE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _check_topic(value: str) -> str:
    """A topic prefix: a valid MQTT topic name, no wildcards, no empty or reserved levels."""
    if not value:
        raise ValueError("expected a non-empty MQTT topic")
    if "#" in value or "+" in value:
        raise ValueError("expected a topic without the wildcards # and +")
    if value.startswith("/") or value.endswith("/"):
        raise ValueError("expected a topic without a leading or trailing /")
    if "//" in value:
        raise ValueError("expected a topic without empty levels (//)")
    if value.startswith("$"):
        raise ValueError("expected a topic not starting with $ (reserved for the broker)")
    if "\x00" in value:
        raise ValueError("expected a topic without NUL characters")
    return value


def _check_pattern(value: str) -> str:
    """A reading selector: an OBIS code, a key, or an fnmatch pattern of either."""
    if not value or value != value.strip():
        raise ValueError("expected an OBIS code, key or pattern without surrounding spaces")
    return value


Topic = Annotated[str, AfterValidator(_check_topic)]
Selector = Annotated[str, AfterValidator(_check_pattern)]


class SerialConfig(BaseModel):
    """The serial section: the meter's P1 port and how to (re)open it."""

    model_config = _SECTION_CONFIG

    port: str = Field(
        default="/dev/ttyUSB0",
        min_length=1,
        description=(
            "The P1 port: a device path (/dev/ttyUSB0, COM3) or a pyserial URL "
            "(socket://host:port for a network dongle, rfc2217://host:port)."
        ),
        examples=["/dev/ttyUSB0", "COM3", "socket://192.168.1.50:23"],
    )
    baudrate: int = Field(
        default=115200,
        gt=0,
        description="Bits per second: 115200 for DSMR 4/5 and e-MUCS H, 9600 for DSMR 2.2/3.",
    )
    bytesize: Literal[7, 8] = Field(
        default=8, description="Data bits: 8 (DSMR 4/5), 7 (DSMR 2.2/3)."
    )
    parity: Literal["N", "E", "O"] = Field(
        default="N", description="Parity: N (none, DSMR 4/5), E (even, DSMR 2.2/3) or O (odd)."
    )
    stopbits: Literal[1, 2] = Field(default=1, description="Stop bits: 1 on every known meter.")
    format: str | None = Field(
        default=None,
        description=(
            "Shorthand for bytesize, parity and stopbits, such as 8N1 (DSMR 4/5, e-MUCS H) or "
            "7E1 (DSMR 2.2/3). Sets all three; if they are also given they must agree."
        ),
        json_schema_extra={"pattern": "^[78][NEOneo][12]$"},
        examples=["8N1", "7E1"],
    )
    reopen_delay_min: float = Field(
        default=1.0,
        gt=0,
        description="Seconds before the first attempt to reopen a lost or unopenable port.",
    )
    reopen_delay_max: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait in seconds between reopen attempts (the delay doubles up to it).",
    )

    @model_validator(mode="before")
    @classmethod
    def _expand_format(cls, data: Any) -> Any:
        """Fill bytesize/parity/stopbits that are not given from ``format``."""
        if not isinstance(data, dict) or not isinstance(data.get("format"), str):
            return data
        match = _SERIAL_FORMAT.fullmatch(data["format"])
        if match is None:
            return data  # the field validator reports it, with its own path
        implied = (int(match[1]), match[2].upper(), int(match[3]))
        return dict(zip(_SERIAL_PARTS, implied, strict=True)) | data

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Refuse a malformed ``format`` or one that contradicts the fields it stands for."""
        if value is None:
            return None
        match = _SERIAL_FORMAT.fullmatch(value)
        if match is None:
            raise ValueError("expected data bits, parity and stop bits such as 8N1 or 7E1")
        implied = (int(match[1]), match[2].upper(), int(match[3]))
        conflicts = [
            f"{name}={info.data[name]}"
            for name, wanted in zip(_SERIAL_PARTS, implied, strict=True)
            if name in info.data and info.data[name] != wanted
        ]
        if conflicts:
            raise ValueError(
                f"does not agree with {', '.join(conflicts)}; give either format or "
                "bytesize, parity and stopbits"
            )
        return value.upper()

    @field_validator("reopen_delay_max")
    @classmethod
    def _check_delays(cls, value: float, info: ValidationInfo) -> float:
        return _check_range(value, info, "reopen_delay_min")


class MeterConfig(BaseModel):
    """The meter section: how to read what the meter says."""

    model_config = _SECTION_CONFIG

    timezone: str = Field(
        default="Europe/Brussels",
        description=(
            "IANA time zone of the meter's clock, used for timestamps the meter sends without "
            "a summer/winter letter."
        ),
        examples=["Europe/Brussels", "Europe/Amsterdam", "Europe/Luxembourg"],
    )
    country: Literal["auto", "BE", "NL", "LU"] = Field(
        default="auto",
        description=(
            "Whose tariff naming to use in labels (BE: tariff 1 = day; NL: tariff 1 = low); "
            "auto decides from the telegram."
        ),
    )
    max_telegram_size: int = Field(
        default=16384,
        ge=64,
        le=1_048_576,
        description="Largest telegram in bytes; longer ones are dropped as garbage.",
    )

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, OSError, ZoneInfoNotFoundError):  # OSError: "Europe", a directory
            raise ValueError("expected an IANA time zone name such as Europe/Brussels") from None
        return value


class MqttConfig(BaseModel):
    """The mqtt section: the broker and how to talk to it."""

    model_config = _SECTION_CONFIG

    broker: str = Field(
        default="mqtt://localhost:1883",
        description=(
            "Broker URL: mqtt://host[:port] or mqtts://host[:port] (TLS), optionally with "
            "user[:password]@ before the host (percent-encode @ : / in them). "
            "Default ports: 1883 for mqtt, 8883 for mqtts."
        ),
        json_schema_extra={"pattern": "^[mM][qQ][tT][tT][sS]?://"},
        examples=["mqtt://localhost:1883", "mqtts://broker.example.org", "mqtt://p1@nas:1883"],
    )
    username: str | None = Field(
        default=None,
        min_length=1,
        description="User name; wins over a user name in the broker URL.",
    )
    password: SecretStr | None = Field(
        default=None,
        min_length=1,
        description=(
            "Password; wins over password_file and a password in the URL. Better set through "
            "the environment variable P1MQTT_MQTT_PASSWORD or password_file. Never logged."
        ),
    )
    password_file: Path | None = Field(
        default=None,
        description=(
            "File holding the password (a trailing newline is ignored); wins over a password in "
            "the broker URL. Relative paths are relative to the configuration file."
        ),
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        description="MQTT client id; null means p1mqtt-<hostname>. Must be unique on the broker.",
    )
    keepalive: int = Field(
        default=60, ge=5, le=3600, description="Seconds between keep-alive pings to the broker."
    )
    protocol: Literal["3.1.1", "5"] = Field(default="3.1.1", description="MQTT protocol version.")
    qos: Literal[0, 1, 2] = Field(default=1, description="Quality of service of every publication.")
    reconnect_delay_min: float = Field(
        default=1.0,
        gt=0,
        description="Seconds before the first attempt to reconnect to the broker.",
    )
    reconnect_delay_max: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait in seconds between reconnect attempts (doubling up to it).",
    )
    queue_size: int = Field(
        default=10000,
        ge=1,
        description="Messages kept in memory while the broker is unreachable.",
    )

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        parse_broker_url(value)
        return value.strip()

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        """Accept ``5`` written as a number (JSON, TOML)."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("reconnect_delay_max")
    @classmethod
    def _check_delays(cls, value: float, info: ValidationInfo) -> float:
        return _check_range(value, info, "reconnect_delay_min")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """As pydantic's, with the broker URL's password masked (the password field is)."""
        for name, value in super().__repr_args__():
            yield name, mask_url_password(value) if name == "broker" else value

    @property
    def host(self) -> str:
        """The broker's host name or address (IPv6 without brackets)."""
        return parse_broker_url(self.broker).host

    @property
    def port(self) -> int:
        """The broker's port: from the URL, else 1883 (mqtt) or 8883 (mqtts)."""
        return parse_broker_url(self.broker).port

    @property
    def use_tls(self) -> bool:
        """True when the broker URL is ``mqtts://``."""
        return parse_broker_url(self.broker).use_tls

    def resolved_username(self) -> str | None:
        """The user name: the ``username`` field, else the one in the broker URL."""
        return self.username or parse_broker_url(self.broker).username

    def resolved_password(self) -> str | None:
        """The password: ``password``, else ``password_file``'s content, else the URL's.

        Raises :class:`ConfigError` when the password file cannot be read.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return _read_password_file(self.password_file)
        return parse_broker_url(self.broker).password

    def resolved_client_id(self) -> str:
        """The client id: ``client_id``, else ``p1mqtt-<hostname>``."""
        return self.client_id or f"p1mqtt-{socket.gethostname()}"


def _read_password_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"mqtt.password_file: {path} does not exist") from None
    except PermissionError:
        raise ConfigError(
            f"mqtt.password_file: {path}: permission denied; make it readable by the user "
            "p1mqtt runs as (and by no one else: chmod 600)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"mqtt.password_file: {path}: cannot read: {reason}") from None
    password = text.rstrip("\r\n")
    if not password:
        raise ConfigError(f"mqtt.password_file: {path} is empty; write the password in it")
    return password


class TlsConfig(BaseModel):
    """The tls section: certificates for an mqtts:// broker."""

    model_config = _SECTION_CONFIG

    cafile: Path | None = Field(
        default=None,
        description=(
            "PEM file of the CA certificate(s) that signed the broker's certificate; null uses "
            "the system's trusted CAs."
        ),
    )
    cert: Path | None = Field(
        default=None,
        description="PEM file of the client certificate, for brokers that require one.",
    )
    key: Path | None = Field(
        default=None,
        description="PEM file of the client certificate's private key (when not in cert).",
    )
    insecure: bool = Field(
        default=False,
        description=(
            "Skip checking that the broker's certificate matches its host name. For testing "
            "only: it allows a man in the middle."
        ),
    )

    @field_validator("key")
    @classmethod
    def _key_needs_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("cert") is None and "cert" in info.data:
            raise ValueError("expected cert too: a key is only used with a client certificate")
        return value

    @property
    def configured(self) -> bool:
        """True when any TLS setting differs from its default."""
        return self.model_dump() != TlsConfig().model_dump()


class TopicsConfig(BaseModel):
    """The topics section: what is published, and where."""

    model_config = _SECTION_CONFIG

    prefix: Topic = Field(
        default="p1mqtt",
        description=(
            "First level(s) of every topic, such as p1mqtt or home/p1; no wildcards (# +) "
            "and no leading or trailing /."
        ),
    )
    telegram: bool = Field(
        default=True, description="Publish each whole telegram as JSON on <prefix>/telegram."
    )
    readings: bool = Field(
        default=True, description="Publish each reading as a plain value on its own topic."
    )
    retain_readings: bool = Field(
        default=True,
        description="Retain the per-reading topics, so new subscribers get the last value.",
    )
    retain_telegram: bool = Field(default=False, description="Retain <prefix>/telegram.")


class ThrottleOverride(BaseModel):
    """One entry of filters.overrides: throttling for some readings; unset fields inherit."""

    model_config = _SECTION_CONFIG

    min_interval: float | None = Field(
        default=None, ge=0, description="Seconds between publications of this reading."
    )
    on_change: bool | None = Field(
        default=None, description="Publish this reading only when it changes."
    )
    heartbeat: float | None = Field(
        default=None,
        ge=0,
        description="With on_change, re-publish an unchanged value this often (s).",
    )


class FiltersConfig(BaseModel):
    """The filters section: which readings are published, and how often."""

    model_config = _SECTION_CONFIG

    include: list[Selector] = Field(
        default_factory=list,
        description=(
            "Publish only these readings (OBIS codes such as 1-0:1.8.1, keys such as "
            "voltage_l1, or fnmatch patterns such as voltage_*); empty publishes all."
        ),
        examples=[["1-0:1.8.*", "power_*"]],
    )
    exclude: list[Selector] = Field(
        default_factory=list,
        description="Never publish these readings (same forms as include); wins over include.",
        examples=[["*_failures", "message_*"]],
    )
    min_interval: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Seconds between two publications of one reading (the telegram topic always carries "
            "every telegram); 0 lets every telegram through."
        ),
    )
    on_change: bool = Field(
        default=True,
        description=(
            "Publish a reading only when its value changes (the telegram topic always carries "
            "every telegram); false publishes every reading of every telegram."
        ),
    )
    heartbeat: float = Field(
        default=60.0,
        ge=0,
        description=(
            "With on_change, re-publish an unchanged value at least this often (s); 0 = never."
        ),
    )
    overrides: dict[Selector, ThrottleOverride] = Field(
        default_factory=dict,
        description=(
            "Throttling per reading: key, OBIS code or pattern -> {min_interval, on_change, "
            "heartbeat}; fields left out inherit the values above."
        ),
        examples=[{"power_*": {"min_interval": 0}, "energy_*": {"on_change": True}}],
    )


class HealthConfig(BaseModel):
    """The health section: the watchdog and the health topic."""

    model_config = _SECTION_CONFIG

    stale_after: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds without a valid telegram before the data is stale: logged, published on "
            "<prefix>/health, and the port reopened. Meters send every 1 s (DSMR 5) to 10 s."
        ),
    )
    publish_interval: float = Field(
        default=30.0, gt=0, description="Seconds between publications of <prefix>/health."
    )


class LoggingConfig(BaseModel):
    """The logging section: where the log goes and how much of it."""

    model_config = _SECTION_CONFIG

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe level logged."
    )
    format: str = Field(
        default="%(asctime)s %(levelname)s %(name)s: %(message)s",
        description="Python logging format of each line (%(name)s style fields).",
    )
    file: Path | None = Field(
        default=None,
        description=(
            "Log to this file, rotated by size; null logs to the console (standard error), "
            "which systemd's journal collects."
        ),
    )
    max_bytes: int = Field(
        default=1_000_000,
        ge=0,
        description="Rotate the log file at this size in bytes; 0 never rotates.",
    )
    backup_count: int = Field(
        default=3, ge=0, description="Rotated log files kept (file.1, file.2, ...)."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        record = logging.LogRecord("p1mqtt", logging.INFO, __file__, 1, "message", None, None)
        try:
            logging.Formatter(value, validate=True).format(record)
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                "expected a logging format with %(name)s-style fields such as %(asctime)s, "
                "%(levelname)s, %(name)s, %(message)s"
            ) from None
        return value


class HomeAssistantConfig(BaseModel):
    """The homeassistant section: MQTT discovery for Home Assistant."""

    model_config = _SECTION_CONFIG

    enabled: bool = Field(
        default=True,
        description="Publish discovery messages so Home Assistant creates the sensors.",
    )
    discovery_prefix: Topic = Field(
        default="homeassistant",
        description="Home Assistant's discovery prefix (its MQTT settings).",
    )


class HomieConfig(BaseModel):
    """The homie section: the Homie convention, for openHAB's automatic discovery."""

    model_config = _SECTION_CONFIG

    enabled: bool = Field(default=False, description="Publish the meter as a Homie 4 device.")
    base_topic: Topic = Field(default="homie", description="Homie base topic.")
    device_id: str = Field(
        default="p1meter",
        description="Homie device id: lower-case letters, digits and inner hyphens.",
    )

    @field_validator("device_id")
    @classmethod
    def _check_device_id(cls, value: str) -> str:
        if not _HOMIE_ID.fullmatch(value):
            raise ValueError("expected lower-case letters, digits and inner hyphens (p1meter)")
        return value


class StorageConfig(BaseModel):
    """The storage section: where p1mqtt keeps its state between runs."""

    model_config = _SECTION_CONFIG

    data_dir: Path | None = Field(
        default=None,
        description=(
            "Directory for the status file, the energy totals and the store-and-forward "
            "queue. Default: $STATE_DIRECTORY under systemd, else $XDG_STATE_HOME/p1mqtt "
            "(~/.local/state/p1mqtt), %LOCALAPPDATA%\\p1mqtt on Windows."
        ),
    )
    outbox_max_mb: float = Field(
        default=150.0,
        gt=0,
        description=(
            "Largest size of the store-and-forward queue, in MB; when full, the oldest "
            "telegrams are dropped (and counted in the log)."
        ),
    )
    outbox_max_age_days: float = Field(
        default=7.0,
        gt=0,
        description="Telegrams older than this many days are dropped from the queue.",
    )


class CapacityConfig(BaseModel):
    """The capacity section: the Belgian capacity tariff, <prefix>/capacity."""

    model_config = _SECTION_CONFIG

    enabled: bool = Field(
        default=True,
        description=(
            "Publish <prefix>/capacity for meters that send the capacity-tariff objects "
            "(1-0:1.4.0 and 1-0:1.6.0)."
        ),
    )
    margin_kw: float = Field(
        default=0.0,
        ge=0,
        description=(
            "peak_warning turns true when the quarter-hour projection comes within this many "
            "kW of the month's peak."
        ),
    )
    floor_kw: float = Field(
        default=2.5,
        ge=0,
        description="The minimum monthly peak billed (2.5 kW in Flanders).",
    )
    publish_interval: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Seconds between two publications of <prefix>/capacity; a change of peak_warning "
            "is published at once. 0 publishes it with every telegram."
        ),
    )


class TotalsConfig(BaseModel):
    """The totals section: energy today, this month and this year, <prefix>/totals."""

    model_config = _SECTION_CONFIG

    enabled: bool = Field(
        default=True,
        description="Publish <prefix>/totals (kept across restarts in the data directory).",
    )
    publish_interval: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between two publications of <prefix>/totals.",
    )


class Config(BaseModel):
    """The whole p1mqtt configuration, one attribute per section."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="p1mqtt configuration")

    serial: SerialConfig = Field(default_factory=SerialConfig, description=SerialConfig.__doc__)
    meter: MeterConfig = Field(default_factory=MeterConfig, description=MeterConfig.__doc__)
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description=MqttConfig.__doc__)
    tls: TlsConfig = Field(default_factory=TlsConfig, description=TlsConfig.__doc__)
    topics: TopicsConfig = Field(default_factory=TopicsConfig, description=TopicsConfig.__doc__)
    filters: FiltersConfig = Field(default_factory=FiltersConfig, description=FiltersConfig.__doc__)
    health: HealthConfig = Field(default_factory=HealthConfig, description=HealthConfig.__doc__)
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description=LoggingConfig.__doc__)
    homeassistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig, description=HomeAssistantConfig.__doc__
    )
    homie: HomieConfig = Field(default_factory=HomieConfig, description=HomieConfig.__doc__)
    storage: StorageConfig = Field(default_factory=StorageConfig, description=StorageConfig.__doc__)
    capacity: CapacityConfig = Field(
        default_factory=CapacityConfig, description=CapacityConfig.__doc__
    )
    totals: TotalsConfig = Field(default_factory=TotalsConfig, description=TotalsConfig.__doc__)

    @field_validator("tls")
    @classmethod
    def _tls_needs_mqtts(cls, value: TlsConfig, info: ValidationInfo) -> TlsConfig:
        mqtt = info.data.get("mqtt")
        if value.configured and isinstance(mqtt, MqttConfig) and not mqtt.use_tls:
            raise ValueError(
                "expected an mqtts:// broker URL: TLS settings are only used with mqtts:// "
                "(mqtt.broker is mqtt://)"
            )
        return value

    def redacted(self) -> dict[str, Any]:
        """The configuration as JSON-able data, every secret shown as ``***``."""
        data = self.model_dump(mode="json")
        for section, section_type in section_types().items():
            for name, field in section_type.model_fields.items():
                if is_secret(field.annotation) and data[section][name] is not None:
                    data[section][name] = MASK
        data["mqtt"]["broker"] = mask_url_password(data["mqtt"]["broker"])
        return data


def section_types() -> dict[str, type[BaseModel]]:
    """Each section's name and model class, in declaration order."""
    sections: dict[str, type[BaseModel]] = {}
    for name, field in Config.model_fields.items():
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise TypeError(f"Config.{name} is not a section model")  # pragma: no cover
        sections[name] = annotation
    return sections


def is_secret(annotation: Any) -> bool:
    """Whether a field with this annotation holds a secret (never shown)."""
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def _check_range(high: float, info: ValidationInfo, low_field: str) -> float:
    """A ``*_max`` delay must not be below its ``*_min`` (when that one is valid)."""
    low = info.data.get(low_field)
    if low is not None and high < low:
        raise ValueError(f"expected at least {low_field} ({low:g})")
    return high
