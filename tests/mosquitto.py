"""A real Mosquitto broker for integration tests, and the TLS material to run it with.

Each :class:`MosquittoBroker` writes its own configuration into its own directory and listens on
127.0.0.1 on a port that :func:`free_port` chose outside the kernel's ephemeral range and holds
for the whole process, so a restart finds it free and no other test takes it. It never touches a
broker that happens to run on the machine.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import hashlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
MOSQUITTO_PASSWD_CANDIDATES = ("/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd")
INSTALL_HINT = (
    "mosquitto is not installed: the integration tests start their own broker. "
    "Run .ci/run (it installs Debian's mosquitto and mosquitto-clients packages) or "
    "`apt-get install mosquitto mosquitto-clients`."
)


class MosquittoNotFoundError(RuntimeError):
    """The mosquitto executable is not installed."""


class BrokerStartError(RuntimeError):
    """A broker did not start listening; the message carries its log."""


def find_mosquitto() -> str:
    """Return the path of the mosquitto executable, or raise with how to install it."""
    for candidate in (shutil.which("mosquitto"), *MOSQUITTO_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise MosquittoNotFoundError(INSTALL_HINT)


def find_mosquitto_passwd() -> str | None:
    """Return the path of mosquitto_passwd, or None when it is not installed."""
    for candidate in (shutil.which("mosquitto_passwd"), *MOSQUITTO_PASSWD_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


# ---------------------------------------------------------------------------------------------
# Ports

_ports_lock = threading.Lock()
_reservations: dict[int, socket.socket] = {}


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _reserve(port: int) -> socket.socket | None:
    """Hold ``port`` for this process: bound with SO_REUSEADDR, never listening.

    mosquitto (which also sets SO_REUSEADDR) can still listen on it, but nobody else can bind
    it, not even after the broker stops for a restart.
    """
    if not _port_is_free(port):
        return None
    reservation = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        reservation.bind((HOST, port))
    except OSError:
        reservation.close()
        return None
    return reservation


def free_port() -> int:
    """Return a loopback port reserved for this process until it exits.

    Ports come from outside the kernel's ephemeral range, so no outgoing connection takes one
    while its broker is stopped; the reservation keeps tests that run in sequence (or in other
    processes) from picking it again.
    """
    eph_low, eph_high = _ephemeral_range()
    ranges = [
        (low, high) for low, high in ((20000, eph_low), (eph_high + 1, 65536)) if high - low > 1000
    ]
    if not ranges:
        ranges = [(1025, 65536)]
    with _ports_lock:
        for _ in range(1000):
            low, high = random.choice(ranges)
            port = random.randrange(low, high)
            if port in _reservations:
                continue
            reservation = _reserve(port)
            if reservation is not None:
                _reservations[port] = reservation
                return port
    raise RuntimeError("no free loopback port found after 1000 attempts")


@atexit.register
def _release_ports() -> None:
    with _ports_lock:
        for reservation in _reservations.values():
            reservation.close()
        _reservations.clear()


# ---------------------------------------------------------------------------------------------
# TLS material


@dataclass(frozen=True)
class CertPair:
    """A PEM certificate and its unencrypted PEM private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class TlsMaterial:
    """Certificates generated for one test session.

    ``ca`` signs ``server`` (127.0.0.1 and localhost), ``client``, ``wrong_host`` (valid only for
    wrong-host.invalid) and ``expired`` (right names, expired yesterday). ``other_ca`` is an
    unrelated CA that signs ``other_client``.
    """

    directory: Path
    ca: CertPair
    server: CertPair
    client: CertPair
    wrong_host: CertPair
    expired: CertPair
    other_ca: CertPair
    other_client: CertPair


_Key = ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "p1mqtt tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_pair(directory: Path, stem: str, cert: x509.Certificate, key: _Key) -> CertPair:
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return CertPair(cert_path, key_path)


def _make_ca(common_name: str, now: dt.datetime) -> tuple[x509.Certificate, _Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    common_name: str,
    *,
    issuer: tuple[x509.Certificate, _Key],
    names: Sequence[str],
    client: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> tuple[x509.Certificate, _Key]:
    issuer_cert, issuer_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if names:
        alt_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def make_tls_material(directory: Path) -> TlsMaterial:
    """Generate a CA, server, client, wrong-host, expired and foreign-CA certificates."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    valid = {"not_before": now - dt.timedelta(days=1), "not_after": now + dt.timedelta(days=30)}
    ca = _make_ca("p1mqtt test CA", now)
    other_ca = _make_ca("unrelated test CA", now)
    local_names = ["127.0.0.1", "localhost"]
    server = _make_leaf("127.0.0.1", issuer=ca, names=local_names, client=False, **valid)
    client = _make_leaf("p1mqtt-client", issuer=ca, names=[], client=True, **valid)
    wrong_host = _make_leaf(
        "wrong-host.invalid", issuer=ca, names=["wrong-host.invalid"], client=False, **valid
    )
    expired = _make_leaf(
        "127.0.0.1",
        issuer=ca,
        names=local_names,
        client=False,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    other_client = _make_leaf("foreign-client", issuer=other_ca, names=[], client=True, **valid)
    return TlsMaterial(
        directory=directory,
        ca=_write_pair(directory, "ca", *ca),
        server=_write_pair(directory, "server", *server),
        client=_write_pair(directory, "client", *client),
        wrong_host=_write_pair(directory, "wrong-host", *wrong_host),
        expired=_write_pair(directory, "expired", *expired),
        other_ca=_write_pair(directory, "other-ca", *other_ca),
        other_client=_write_pair(directory, "other-client", *other_client),
    )


# ---------------------------------------------------------------------------------------------
# Passwords


def mosquitto_password_hash(password: str, *, iterations: int = 101) -> str:
    """Return the PBKDF2-SHA512 (``$7$``) hash that mosquitto 2.x accepts in a password file."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    salt_b64 = base64.b64encode(salt).decode()
    digest_b64 = base64.b64encode(digest).decode()
    return f"$7${iterations}${salt_b64}${digest_b64}"


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Write a mosquitto password file, with mosquitto_passwd when installed."""
    tool = find_mosquitto_passwd()
    if tool is None:
        path.write_text(
            "".join(f"{user}:{mosquitto_password_hash(pw)}\n" for user, pw in users.items())
        )
    else:
        path.write_text("")
        for user, password in users.items():
            subprocess.run(
                [tool, "-b", str(path), user, password],
                check=True,
                capture_output=True,
                timeout=30,
            )
    path.chmod(0o600)


# ---------------------------------------------------------------------------------------------
# The broker


@dataclass(frozen=True)
class BrokerTls:
    """The TLS side of a broker's listener."""

    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = False


class MosquittoBroker:
    """One mosquitto process with its own configuration, port, directory and log.

    ``stop()`` then ``start()`` restarts it on the same port (with ``persistence=True`` sessions
    and retained messages survive). ``kill()`` ends it with SIGKILL, as a crash would.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        tls: BrokerTls | None = None,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        allow_anonymous: bool | None = None,
        persistence: bool = False,
        extra_config: Sequence[str] = (),
        executable: str | None = None,
    ) -> None:
        """Write the configuration; nothing runs until :meth:`start`.

        ``users`` maps user names to passwords; ``acl`` is the text of an ACL file;
        ``allow_anonymous`` defaults to true unless ``users`` are given.
        """
        self.executable = executable or find_mosquitto()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.tls = tls
        self.log_path = directory / "mosquitto.log"
        self.config_path = directory / "mosquitto.conf"
        self._process: subprocess.Popen[bytes] | None = None
        if allow_anonymous is None:
            allow_anonymous = not users
        lines = [
            "per_listener_settings false",
            f"allow_anonymous {'true' if allow_anonymous else 'false'}",
            f"listener {self.port} {HOST}",
        ]
        if tls is not None:
            lines += [
                f"cafile {tls.cafile}",
                f"certfile {tls.certfile}",
                f"keyfile {tls.keyfile}",
                f"require_certificate {'true' if tls.require_certificate else 'false'}",
            ]
        if users:
            password_file = directory / "passwords"
            write_password_file(password_file, users)
            lines.append(f"password_file {password_file}")
        if acl is not None:
            acl_file = directory / "acl"
            acl_file.write_text(acl)
            lines.append(f"acl_file {acl_file}")
        if persistence:
            lines += ["persistence true", f"persistence_location {directory}/"]
        else:
            lines.append("persistence false")
        if os.geteuid() == 0:
            # Root would otherwise drop to the "mosquitto" user, who cannot read our files.
            lines.append("user root")
        lines += [
            "log_dest stderr",
            "log_type all",
            "log_timestamp true",
            "log_timestamp_format %H:%M:%S",
            "connection_messages true",
            *extra_config,
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._process.pid if self.running and self._process is not None else None

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto on ``self.port`` and wait until it accepts connections."""
        if self.running:
            raise RuntimeError(f"broker on port {self.port} is already running")
        with self.log_path.open("ab") as log:
            log.write(f"===== starting mosquitto on {HOST}:{self.port}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [self.executable, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise BrokerStartError(
                    f"mosquitto exited with status {self._process.returncode} before listening "
                    f"on {HOST}:{self.port}; its log:\n{self.log_text()}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise BrokerStartError(
                        f"mosquitto did not listen on {HOST}:{self.port} within {timeout} s; "
                        f"its log:\n{self.log_text()}"
                    ) from None
                # Polling a condition with a deadline: there is no event to wait on here.
                threading.Event().wait(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop mosquitto gracefully (SIGTERM: it saves persistence), killing it if it hangs."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def kill(self) -> None:
        """End mosquitto with SIGKILL, like a crash: nothing is saved."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait(10)

    def restart(self, timeout: float = 10.0) -> None:
        """Stop, then start again on the same port."""
        self.stop(timeout)
        self.start(timeout)

    def log_text(self) -> str:
        """Everything the broker logged so far (all starts)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __repr__(self) -> str:
        """Say where it listens and whether it runs."""
        state = "running" if self.running else "stopped"
        kind = "tls" if self.tls else "plain"
        return f"<MosquittoBroker {kind} {HOST}:{self.port} {state}>"

    def __enter__(self) -> MosquittoBroker:
        """Start the broker."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the broker."""
        self.stop()


class BrokerFactory(Protocol):
    """The type of the ``mosquitto_factory`` fixture: build (and by default start) a broker."""

    def __call__(
        self,
        *,
        start: bool = True,
        port: int | None = None,
        tls: BrokerTls | None = None,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        allow_anonymous: bool | None = None,
        persistence: bool = False,
        extra_config: Sequence[str] = (),
    ) -> MosquittoBroker:
        """Build a broker in the test's directory; every broker is stopped after the test."""
        ...
