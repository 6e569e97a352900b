"""The broker itself enforces the grants: refusals come from Kafka's authorizer, not
from our client code (a plain aiokafka client is refused the same way)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from databus.client.publisher import Publisher
from databus.client.subscriber import Subscriber
from databus.errors import AccessDeniedError
from databus.governance.access import derive_access
from databus.governance.grants import load_grants
from databus.governance.views import catalog_with_views
from databus.ops.acls import apply_access
from databus.settings import Settings
from databus.streams.names import changelog_topic
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input
from tests.integration.secure import (
    SecureBus,
    read_topic,
    run_databus,
    start_databus,
    stop,
    wait_for,
)

pytestmark = pytest.mark.integration

DEATHS = "health.death_certificate.v1"
VISITS = "health.hospital_visit.v1"


async def _read_all(topics: list[str], settings: Settings, *, group: str) -> None:
    catalog = catalog_with_views(load_grants(settings.grants or Path()))
    async with Subscriber(topics, settings, group=group, catalog=catalog) as reader:
        async for _ in reader.events(idle_timeout=5):
            pass


async def _consume(options: dict[str, Any], topic: str, group: str) -> None:
    """A plain aiokafka consumer in a group: the broker's answer, unfiltered."""
    consumer = AIOKafkaConsumer(topic, **options, group_id=group)
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("user", "topic"),
    [
        pytest.param("civil", "share.hrss.health.death_certificate.v1", id="another-s-view"),
        pytest.param("civil", DEATHS, id="the-source-topic"),
        pytest.param("police", "share.police.health.death_certificate.v1", id="expired-grant"),
        pytest.param("transport", "share.civil.health.death_certificate.v1", id="no-grant"),
    ],
)
async def test_reading_without_an_active_grant_is_refused_by_the_broker(
    secure: SecureBus, user: str, topic: str
) -> None:
    settings = secure.settings(user)
    catalog = catalog_with_views(load_grants(secure.grants))
    with pytest.raises(AccessDeniedError, match="TOPIC_AUTHORIZATION_FAILED") as refused:
        async with Subscriber([topic], settings, from_beginning=True, catalog=catalog):
            pass
    assert refused.value.principal == user
    # Not our client's judgement: a plain Kafka client gets the broker's error.
    with pytest.raises(TopicAuthorizationFailedError):
        await _consume(settings.kafka_client_options(), topic, f"{user}.raw")


async def test_a_consumer_reads_its_own_view_with_its_own_group(secure: SecureBus) -> None:
    share = secure.settings("civil")
    catalog = catalog_with_views(load_grants(secure.grants))
    view = "share.civil.health.death_certificate.v1"
    async with Subscriber([view], share, group="civil.registry", catalog=catalog) as reader:
        assert [e async for e in reader.events(idle_timeout=1)] == []  # empty, not refused
    with pytest.raises(AccessDeniedError, match="GROUP_AUTHORIZATION_FAILED"):
        await _read_all([view], share, group="hrss.registry")
    with pytest.raises(GroupAuthorizationFailedError):
        await _consume(share.kafka_client_options(), view, "hrss.raw")


async def test_an_agency_cannot_write_another_agency_s_topic(secure: SecureBus) -> None:
    citizen_id = make_citizen_id("370102", dt.date(1940, 3, 3), 502)
    police = secure.settings("police")
    async with Publisher(police, source="police") as publisher:
        with pytest.raises(AccessDeniedError, match="refused police access to health"):
            await publisher.publish(VISITS, sample_input(VISITS, citizen_id))
        own = sample_input("police.household.v1", citizen_id)
        assert isinstance(await publisher.publish("police.household.v1", own), Message)
    producer = AIOKafkaProducer(**police.kafka_client_options())
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(VISITS, b"{}", key=b"X" * 26)
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait("share.civil.health.death_certificate.v1", b"{}")
    finally:
        await producer.stop()


async def test_acl_apply_converges(secure: SecureBus, tmp_path: Path) -> None:
    grants = load_grants(secure.grants)
    changes = await apply_access(
        secure.admin,
        derive_access(grants, today=dt.date.today()),  # noqa: DTZ011
        managed_topics=[d.topic for d in catalog_with_views(grants)],
        credentials_dir=tmp_path,
    )
    assert (changes.users_created, changes.added, changes.removed) == ([], [], [])
    assert changes.unchanged > 40
    refused = run_databus(secure, "civil", "acl", "apply", "--dry-run")
    assert refused.returncode == 2
    assert "refused" in refused.stderr


def test_a_decision_worker_still_runs(secure: SecureBus, tmp_path: Path) -> None:
    """Faust with nothing but the derived ACLs: it creates its changelog, joins its
    group, reads the sources and writes a decision."""
    worker = start_databus(
        secure,
        "databus-decisions",
        tmp_path / "worker.log",
        *("worker", "--memory-store", "--data-dir", str(tmp_path / "data")),
        "--session-timeout",
        "10",
    )
    try:
        citizen_id = make_citizen_id("370102", dt.date(1944, 8, 8), 503)
        pensioner = sample_input("hrss.pensioner.v1", citizen_id)
        death = sample_input(DEATHS, citizen_id, occurred_at="2026-04-30T16:05:00+08:00")

        async def publish_and_read() -> list[object]:
            async with Publisher(secure.settings("hrss"), source="hrss") as hrss:
                await hrss.publish("hrss.pensioner.v1", pensioner)
            async with Publisher(secure.settings("health"), source="health") as health:
                await health.publish(DEATHS, death)
            found = await wait_for(secure.admin, "derived.pension_status.v1", 1, limit_s=120)
            return [r for r in found if b"deceased" in r.value]

        decisions = asyncio.run(publish_and_read())
        assert decisions, (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
        assert worker.poll() is None
        changelogs = asyncio.run(read_topic(secure.admin, changelog_topic()))
        assert changelogs, "the worker wrote its changelog (a topic it created itself)"
    finally:
        stop(worker)


async def test_no_client_gets_in_without_a_valid_scram_login(
    secure: SecureBus, caplog: pytest.LogCaptureFixture
) -> None:
    plaintext = Settings(bootstrap_servers=secure.admin.bootstrap_servers)
    with pytest.raises(KafkaConnectionError):
        await _consume(plaintext.kafka_client_options(), DEATHS, "civil.anonymous")
    wrong = secure.settings("civil", sasl_password="not-the-password")
    with pytest.raises(KafkaConnectionError):
        await _consume(wrong.kafka_client_options(), DEATHS, "civil.guess")
    assert "SaslAuthenticationFailed" in caplog.text
