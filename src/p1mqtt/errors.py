"""The exception hierarchy of p1mqtt.

Every exception p1mqtt raises on purpose derives from :class:`P1MqttError`, so a caller can
catch the whole family in one place (the CLI does, and maps them to exit codes). Decoding never
raises for bad *input bytes*: those become events. Exceptions are for misuse of the API, bad
configuration and failures of the outside world (port, broker, files).
"""


class P1MqttError(Exception):
    """Root of every error p1mqtt raises on purpose."""


class UsageError(P1MqttError, ValueError):
    """The API was called with arguments that can never work (a programming error)."""


class ConfigError(P1MqttError):
    """The configuration is invalid; the message names the file, the field and what is expected."""


class SourceError(P1MqttError):
    """The meter's port cannot be opened or read; the message says what to do about it."""


class BrokerError(P1MqttError):
    """The MQTT broker cannot be reached or refused us; the message says why."""
