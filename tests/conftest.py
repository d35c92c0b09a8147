"""Fixtures for the integration tests: real Mosquitto brokers and TLS certificates.

Every broker is started by a fixture on its own loopback port with its own configuration; no
test talks to a broker that happens to run on the machine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from meter_pty import PtyMeter
from mosquitto import (
    BrokerFactory,
    BrokerTls,
    MosquittoBroker,
    MosquittoNotFoundError,
    TlsMaterial,
    find_mosquitto,
    make_tls_material,
)


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """CA, server, client, wrong-host, expired and foreign-CA certificates for the session."""
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[BrokerFactory]:
    """Build brokers with custom options (TLS, users, ACL, persistence); all stop afterwards."""
    executable = None
    try:
        executable = find_mosquitto()
    except MosquittoNotFoundError as exc:
        missing = str(exc)
    if executable is None:
        pytest.fail(missing, pytrace=False)
    brokers: list[MosquittoBroker] = []

    def build(
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
        broker = MosquittoBroker(
            tmp_path / f"mosquitto-{len(brokers)}",
            port=port,
            tls=tls,
            users=users,
            acl=acl,
            allow_anonymous=allow_anonymous,
            persistence=persistence,
            extra_config=extra_config,
            executable=executable,
        )
        brokers.append(broker)
        if start:
            broker.start()
        return broker

    yield build
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory: BrokerFactory) -> MosquittoBroker:
    """A plain broker (anonymous access allowed) on a free loopback port, for one test."""
    return mosquitto_factory()


@pytest.fixture
def meter(tmp_path: Path) -> Iterator[PtyMeter]:
    """A pseudo-terminal standing in for the meter, behind a by-id style symlink."""
    pty = PtyMeter(tmp_path / "usb-P1_cable-if00-port0")
    yield pty
    pty.close()
