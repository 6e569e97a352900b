"""The broker itself enforces the grants: refusals come from Kafka's authorizer, not
from our client code (a plain aiokafka client is refused the same way)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from databus.client.publisher import Publisher
from databus.client.subscriber import Subscriber
from databus.errors import AccessDeniedError
from databus.governance.access import Acl, derive_access
from databus.governance.grants import load_grants
from databus.governance.views import catalog_with_views
from databus.ops import kafka_protocol as kp
from databus.ops.acls import Binding, SecurityAdmin, apply_access
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
    values,
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


CIVIL_VIEW = "share.civil.health.death_certificate.v1"
HRSS_VIEW = "share.hrss.health.death_certificate.v1"
AUDIT = "audit.sharing.v1"
OPERATIONS = "audit.operations.v1"
TOPIC, LITERAL = kp.RESOURCE_TYPES["topic"], kp.PATTERN_TYPES["literal"]


def stray(
    name: str, principal: str, operation: str, *, host: str = "*", deny: bool = False
) -> Binding:
    permission = kp.PERMISSION_DENY if deny else kp.PERMISSION_ALLOW
    return Binding(TOPIC, name, LITERAL, principal, host, kp.OPERATIONS[operation], permission)


async def acl_records(secure: SecureBus) -> list[dict[str, Any]]:
    records = values(await read_topic(secure.admin, OPERATIONS))
    return [r for r in records if r["action"] == "acl.apply"]


async def test_acl_apply_removes_every_acl_it_does_not_declare_and_a_dry_run_only_says_so(
    secure: SecureBus, tmp_path: Path
) -> None:
    """Host-restricted, wildcard-principal and DENY rules on our resources used to survive
    `acl apply` (and widen access); now they are removed, and the dry run lists them."""
    strays = [
        stray(DEATHS, "User:civil", "read", host="10.0.0.7"),
        stray(HRSS_VIEW, "User:*", "read"),
        stray("civil.funeral.v1", "User:transport", "write", deny=True),
        Binding(
            kp.RESOURCE_TYPES["group"],
            "civil.",
            kp.PATTERN_TYPES["prefixed"],
            "User:*",
            "*",
            kp.OPERATIONS["read"],
            kp.PERMISSION_ALLOW,
        ),
    ]
    missing = Binding.of(Acl("civil", "topic", CIVIL_VIEW, "literal", "read"))
    async with SecurityAdmin(secure.admin) as admin:
        converged = await admin.bindings()
        assert missing in converged
        await admin.create(strays)
        await admin.delete([missing])
        drifted = await admin.bindings()
    assert set(strays) <= drifted
    audited_before = await acl_records(secure)
    credentials = ("--credentials-dir", str(tmp_path))

    dry = run_databus(secure, "admin", "acl", "apply", "--dry-run", *credentials)
    assert dry.returncode == 0, dry.stderr
    for binding in strays:
        assert f"would remove {binding}" in dry.stdout
    assert f"would add    {missing}" in dry.stdout
    assert "ACLs: 1 to add, 4 to remove" in dry.stdout
    assert "nothing changed (dry run)" in dry.stdout
    async with SecurityAdmin(secure.admin) as admin:
        assert await admin.bindings() == drifted, "a dry run changes nothing"
    assert await acl_records(secure) == audited_before, "and records nothing"

    applied = run_databus(secure, "admin", "acl", "apply", *credentials)
    assert applied.returncode == 0, applied.stderr
    assert "recorded in audit.operations.v1" in applied.stdout
    async with SecurityAdmin(secure.admin) as admin:
        assert await admin.bindings() == converged
    (record,) = [r for r in await acl_records(secure) if r not in audited_before]
    assert record["principal"] == "admin"
    assert record["outcome"] == "done"
    assert sorted(record["details"]["acls_removed"]) == sorted(str(b) for b in strays)
    assert record["details"]["acls_added"] == [str(missing)]
    assert record["details"]["counts"]["acls_removed"] == len(strays)
    _, _, password = secure.admin.sasl_credentials()
    assert password not in orjson.dumps(record).decode()


async def test_nobody_but_a_super_user_may_delete_audit_records(secure: SecureBus) -> None:
    """The audit floor: even an ALLOW added by mistake (or by an insider) does not let a
    principal delete audit records; DENY wins over ALLOW in Kafka's authorizer."""
    async with SecurityAdmin(secure.admin) as admin:
        present = await admin.bindings()
    floor = {str(b) for b in present if b.permission == kp.PERMISSION_DENY}
    assert floor == {
        f"User:* DENY {operation} topic {topic}"
        for topic in (AUDIT, OPERATIONS)
        for operation in ("delete", "alter", "alter_configs")
    }
    rogue = [Binding.of(Acl("databus-share", "topic", AUDIT, "literal", "delete"))]
    async with SecurityAdmin(secure.admin) as admin:
        await admin.create(rogue)
    try:
        share = AIOKafkaAdminClient(**secure.settings("databus-share").kafka_client_options())
        await share.start()
        try:
            nothing = {TopicPartition(AUDIT, 0): RecordsToDelete(before_offset=0)}
            with pytest.raises(TopicAuthorizationFailedError):
                await share.delete_records(nothing)
        finally:
            await share.close()
    finally:
        async with SecurityAdmin(secure.admin) as admin:
            await admin.delete(rogue)


async def test_the_clock_ticks_with_its_own_principal_and_cannot_write_a_decision(
    secure: SecureBus,
) -> None:
    ticked = run_databus(secure, "databus-clock", "clock", "tick")
    assert ticked.returncode == 0, ticked.stdout + ticked.stderr
    ticks = values(await read_topic(secure.admin, "system.clock.v1"))
    assert ticks, "the ticks are on the clock topic"
    operations = values(await read_topic(secure.admin, OPERATIONS))
    assert [
        r for r in operations if (r["action"], r["principal"]) == ("clock.tick", "databus-clock")
    ]
    producer = AIOKafkaProducer(**secure.settings("databus-clock").kafka_client_options())
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait("derived.pension_status.v1", b"{}", key=b"X" * 26)
    finally:
        await producer.stop()
