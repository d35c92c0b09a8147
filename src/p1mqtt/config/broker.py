"""The MQTT broker URL: ``mqtt[s]://[user[:password]@]host[:port]``, parsed and masked.

Pure functions, no I/O: the model validates ``mqtt.broker`` with :func:`parse_broker_url`, and
everything that shows a URL to a person goes through :func:`mask_url_password` first.
"""

from typing import NamedTuple
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_PORTS", "BrokerAddress", "mask_url_password", "parse_broker_url"]

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
"""The port used when the URL names none, per scheme."""

MASK = "***"
"""What a secret is replaced with wherever it is shown."""


class BrokerAddress(NamedTuple):
    """The parts of a broker URL, percent-decoded."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def use_tls(self) -> bool:
        """True for ``mqtts://``."""
        return self.scheme == "mqtts"


def parse_broker_url(url: str) -> BrokerAddress:
    """Split a broker URL into its parts.

    Raises ``ValueError`` with a message saying what is expected; the message never repeats
    the URL (it may hold a password).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("expected a URL starting with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError("expected a host name after mqtt:// or mqtts://")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("expected a port number from 1 to 65535 after the host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("expected nothing after host[:port] (no path, ? or #)")
    return BrokerAddress(
        scheme=scheme,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def mask_url_password(url: str) -> str:
    """The URL with any password in it replaced by ``***``; works on malformed URLs too."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{separator}{user}:{MASK}@{hostpart}"
