"""The secure local broker against a real JVM: TLS with our CA, and nothing else gets in."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from cryptography import x509

from databus.ops.broker import LocalBroker, free_ports
from databus.ops.private_files import loose_modes
from databus.ops.tls import ensure_broker_tls
from databus.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def secure_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_settings: Settings
) -> Iterator[LocalBroker]:
    """One secure broker for this module (TLS and SASL/SCRAM, ACLs enforced)."""
    port, controller = free_ports(2)
    state = tmp_path_factory.mktemp("tls-broker")
    broker = LocalBroker(state, broker_settings.cache_dir, port, controller, secure=True)
    broker.start()
    yield broker
    broker.stop()


def admin(broker: LocalBroker) -> Settings:
    return Settings(**broker.admin_settings())


async def create_topic(settings: Settings, topic: str) -> None:
    client = AIOKafkaAdminClient(**settings.kafka_client_options())
    await client.start()
    try:
        await client.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await client.close()


async def round_trip(settings: Settings, topic: str, value: bytes) -> bytes:
    producer = AIOKafkaProducer(**settings.kafka_client_options())
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"key")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        **settings.kafka_client_options(),
        group_id=f"test-{uuid.uuid4()}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=60)
        await consumer.commit()
    finally:
        await consumer.stop()
    return bytes(message.value)


def test_a_client_that_trusts_the_ca_connects_and_authenticates(
    secure_broker: LocalBroker,
) -> None:
    settings = admin(secure_broker)
    assert settings.security_protocol == "SASL_SSL"
    assert settings.ssl_cafile == secure_broker.ca_path
    topic = f"test-tls-{uuid.uuid4()}"

    asyncio.run(create_topic(settings, topic))

    assert asyncio.run(round_trip(settings, topic, b"over tls")) == b"over tls"
    status = secure_broker.status()
    assert (status.secure, status.tls, status.demo) == (True, True, False)


def test_admin_env_names_the_protocol_and_the_ca(secure_broker: LocalBroker) -> None:
    lines = secure_broker.admin_env_path.read_text().splitlines()

    assert "export DATABUS_SECURITY_PROTOCOL=SASL_SSL" in lines
    assert f"export DATABUS_SSL_CAFILE={secure_broker.ca_path}" in lines


def _password(broker: LocalBroker) -> str:
    password = admin(broker).sasl_password
    assert password is not None
    return password.get_secret_value()


def _refused(broker: LocalBroker, caplog: pytest.LogCaptureFixture, **options: Any) -> str:
    """Start a producer with ``options``; return the error aiokafka logged for the refusal."""

    async def start() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, **options)
        try:
            await producer.start()
        finally:
            await producer.stop()

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        asyncio.run(start())
    return "\n".join(record.getMessage() for record in caplog.records)


def test_a_plaintext_client_is_refused(
    secure_broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    error = _refused(secure_broker, caplog)

    assert f"Connection at {secure_broker.bootstrap} closed" in error


def test_a_sasl_plaintext_client_with_the_right_password_is_refused(
    secure_broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    error = _refused(
        secure_broker,
        caplog,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="admin",
        sasl_plain_password=_password(secure_broker),
    )

    assert f"Connection at {secure_broker.bootstrap} closed" in error


def test_a_tls_client_that_trusts_only_the_system_cas_is_refused(
    secure_broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    error = _refused(
        secure_broker,
        caplog,
        security_protocol="SASL_SSL",
        ssl_context=ssl.create_default_context(),
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="admin",
        sasl_plain_password=_password(secure_broker),
    )

    assert "CERTIFICATE_VERIFY_FAILED" in error


def test_a_tls_client_with_a_wrong_password_is_refused(
    secure_broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    error = _refused(
        secure_broker,
        caplog,
        security_protocol="SASL_SSL",
        ssl_context=ssl.create_default_context(cafile=str(secure_broker.ca_path)),
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="admin",
        sasl_plain_password="not-the-password",
    )

    assert "SaslAuthenticationFailed" in error


def _handshake(broker: LocalBroker, context: ssl.SSLContext, server_hostname: str) -> bytes:
    """A bare TLS handshake with the client port; the certificate the broker presented."""
    with (
        socket.create_connection(("127.0.0.1", broker.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        presented = tls.getpeercert(binary_form=True)
    assert presented is not None
    return presented


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_the_presented_certificate_names_loopback_and_is_valid_now(
    secure_broker: LocalBroker, name: str
) -> None:
    # check_hostname is on: the handshake itself fails if the name is not in the SAN.
    context = ssl.create_default_context(cafile=str(secure_broker.ca_path))

    cert = x509.load_der_x509_certificate(_handshake(secure_broker, context, name))

    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc


def test_the_controller_listener_is_tls_too(secure_broker: LocalBroker) -> None:
    context = ssl.create_default_context(cafile=str(secure_broker.ca_path))
    with (
        socket.create_connection(("127.0.0.1", secure_broker.controller_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}


def test_system_cas_do_not_verify_the_broker(secure_broker: LocalBroker) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _handshake(secure_broker, ssl.create_default_context(), "127.0.0.1")


def _s_client(broker: LocalBroker, ca_file: Path) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed"
    return subprocess.run(
        [openssl, "s_client", "-connect", broker.bootstrap, "-CAfile", str(ca_file),
         "-verify_return_error", "-verify_ip", "127.0.0.1", "-servername", "localhost"],
        input="", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_openssl_verifies_the_broker_with_the_ca_and_not_with_another(
    secure_broker: LocalBroker, tmp_path: Path
) -> None:
    """An independent TLS client (OpenSSL) verifies the broker the same way. (Debian's
    kcat cannot be that client: its librdkafka 2.0 fails SCRAM against Kafka 4, kcat #462.)"""
    trusted = _s_client(secure_broker, secure_broker.ca_path)
    untrusted = _s_client(secure_broker, ensure_broker_tls(tmp_path / "another").ca_file)

    assert trusted.returncode == 0, trusted.stdout[-2000:] + trusted.stderr
    assert "Verify return code: 0 (ok)" in trusted.stdout
    assert untrusted.returncode != 0
    assert "verify error" in untrusted.stderr + untrusted.stdout


def test_everything_the_secure_broker_wrote_is_private(secure_broker: LocalBroker) -> None:
    settings = admin(secure_broker)
    topic = f"test-modes-{uuid.uuid4()}"
    asyncio.run(create_topic(settings, topic))
    asyncio.run(round_trip(settings, topic, b"resident data"))

    assert loose_modes(secure_broker.broker_dir) == []


def test_an_older_secure_state_dir_gets_certificates_and_keeps_its_data(
    tmp_path: Path, broker_settings: Settings
) -> None:
    """A data dir formatted in secure mode before TLS (no tls/ beside it) starts with TLS,
    users, ACLs and topics intact: TLS is listener config, not metadata."""
    broker = LocalBroker(tmp_path / "state", broker_settings.cache_dir, *free_ports(2), secure=True)
    broker.start()
    try:
        topic = f"test-older-{uuid.uuid4()}"
        asyncio.run(create_topic(admin(broker), topic))
        asyncio.run(round_trip(admin(broker), topic, b"before"))
        broker.stop()
        shutil.rmtree(broker.tls_dir)

        broker.start()

        assert broker.ca_path.is_file()
        assert broker.status().tls
        assert asyncio.run(round_trip(admin(broker), topic, b"after")) == b"before"
    finally:
        broker.stop()
