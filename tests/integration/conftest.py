"""Integration fixtures: a real Kafka broker for the whole test session.

Set ``DATABUS_TEST_BOOTSTRAP`` to test against a broker you run yourself (for example
``docker compose up kafka`` → ``127.0.0.1:9092``); otherwise the session starts its own
:class:`~databus.ops.broker.LocalBroker` on free ports in a temporary state directory,
sharing the normal jar cache, and stops it at the end.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from databus.ops.broker import LocalBroker, free_ports
from databus.settings import Settings
from tests.integration.secure import SecureBus, secure_bus

BOOTSTRAP_ENV_VAR = "DATABUS_TEST_BOOTSTRAP"


@pytest.fixture(scope="session")
def broker_settings() -> Settings:
    """The normal settings: every test broker shares their jar cache."""
    return Settings()


@pytest.fixture(scope="session")
def kafka_bootstrap(
    tmp_path_factory: pytest.TempPathFactory, broker_settings: Settings
) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a broker that lives as long as the test session."""
    external = os.environ.get(BOOTSTRAP_ENV_VAR)
    if external:
        yield external
        return
    port, controller_port = free_ports(2)
    broker = LocalBroker(
        state_dir=tmp_path_factory.mktemp("kafka-state"),
        cache_dir=broker_settings.cache_dir,
        port=port,
        controller_port=controller_port,
    )
    bootstrap = broker.start()
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def bus_settings(kafka_bootstrap: str) -> Settings:
    """Settings for the session broker, with a test pseudonym key and the catalog's
    topics applied once."""
    from databus.ops.topics import apply_topics  # noqa: PLC0415

    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        pseudonym_key="integration-test-key-at-least-32-bytes-long",  # type: ignore[arg-type]
        demo=False,
    )
    asyncio.run(apply_topics(settings))
    return settings


@pytest.fixture(scope="session")
def secure(
    tmp_path_factory: pytest.TempPathFactory, broker_settings: Settings
) -> Iterator[SecureBus]:
    """A second broker for the session, in secure mode (SASL/SCRAM, ACLs enforced), with
    the governance tests' grants, every topic, and every derived user and ACL applied."""
    with secure_bus(tmp_path_factory.mktemp("secure-kafka"), broker_settings.cache_dir) as bus:
        yield bus
