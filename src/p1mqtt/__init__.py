"""p1mqtt: read a smart meter's P1 port and publish every reading to MQTT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("p1mqtt")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
