"""Users and ACLs derived from the catalog and the grants, and their Strimzi form."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from databus.catalog import CATALOG
from databus.governance.access import Acl, Principal, audit_floor, declared_acls, derive_access
from databus.governance.grants import Grant, GrantSet
from databus.governance.strimzi import render_users
from databus.ops.acls import acl_entry, salted_password

TODAY = dt.date(2026, 6, 1)
DEATHS = "health.death_certificate.v1"
ACTIVE = Grant("civil", DEATHS, ("person_ref", "date_of_death"), "p", dt.date(2030, 1, 1))
EXPIRED = Grant("finance", DEATHS, ("person_ref",), "p", dt.date(2026, 5, 31))


@pytest.fixture
def principals() -> dict[str, Principal]:
    derived = derive_access(GrantSet((ACTIVE, EXPIRED)), today=TODAY)
    return {p.name: p for p in derived}


def acls(principal: Principal) -> set[str]:
    return {str(acl).split(" ", 1)[1] for acl in principal.acls}


def test_every_owner_every_consumer_and_the_workers_are_users(
    principals: dict[str, Principal],
) -> None:
    owners = {d.owner for d in CATALOG.sources()}
    assert set(principals) == owners | {
        "finance",
        "databus-decisions",
        "databus-share",
        "databus-clock",
        "auditor",
    }


def test_an_owner_writes_only_its_own_source_topics(principals: dict[str, Principal]) -> None:
    health = principals["health"]
    writes = {a.name for a in health.acls if a.operation == "write"}
    assert writes == {d.topic for d in CATALOG.sources() if d.owner == "health"} | {
        "dlq.rejected.v1"
    }
    assert not [a for a in health.acls if a.operation == "read" and a.resource_type == "topic"]


def test_a_consumer_reads_only_the_share_topics_of_active_grants(
    principals: dict[str, Principal],
) -> None:
    assert "read topic share.civil.health.death_certificate.v1" in acls(principals["civil"])
    topics_read = {
        a.name
        for p in principals.values()
        if p.role == "agency"
        for a in p.acls
        if a.resource_type == "topic" and a.operation == "read"
    }
    assert topics_read == {"share.civil.health.death_certificate.v1"}
    assert acls(principals["finance"]) == {"read group finance.*"}


def test_each_agency_uses_only_groups_under_its_own_name(
    principals: dict[str, Principal],
) -> None:
    for principal in principals.values():
        groups = [a for a in principal.acls if a.resource_type == "group"]
        if principal.role == "agency":
            own = Acl(principal.name, "group", f"{principal.name}.", "prefixed", "read")
            assert groups == [own]


def test_the_decision_worker_gets_what_faust_needs(principals: dict[str, Principal]) -> None:
    rules = acls(principals["databus-decisions"])
    assert {
        "read topic system.clock.v1",
        "write topic system.clock.v1",
        "write topic derived.pension_status.v1",
        "read topic health.death_certificate.v1",
        "create topic databus-decisions-*",
        "read topic databus-decisions-*",
        "write topic databus-decisions-*",
        "read group databus-decisions",
        "write transactional_id databus-decisions-*",
    } <= rules
    assert not [r for r in rules if r.startswith("read topic share.")]


def test_the_share_worker_reads_sources_and_writes_shares_and_the_audit_trail(
    principals: dict[str, Principal],
) -> None:
    rules = acls(principals["databus-share"])
    assert {f"read topic {d.topic}" for d in CATALOG.shareable()} <= rules
    assert {
        "write topic share.*",
        "write topic audit.sharing.v1",
        "read topic audit.sharing.v1",
        "write topic audit.operations.v1",
        "read group databus-share",
        "write transactional_id databus-share-*",
    } <= rules
    assert "read topic dlq.rejected.v1" not in rules
    assert not [r for r in rules if r.startswith(("delete", "alter"))]


def test_the_clock_ticks_and_records_its_operations_and_nothing_else(
    principals: dict[str, Principal],
) -> None:
    clock = principals["databus-clock"]
    assert clock.role == "clock"
    assert acls(clock) == {
        "read topic system.clock.v1",
        "write topic system.clock.v1",
        "describe topic system.clock.v1",
        "write topic audit.operations.v1",
    }
    # The decision worker keeps its own write on the clock (its leader's daily ticks).
    assert "write topic system.clock.v1" in acls(principals["databus-decisions"])


def test_the_auditor_reads_the_audit_trails_and_what_they_describe_but_writes_nothing(
    principals: dict[str, Principal],
) -> None:
    rules = acls(principals["auditor"])
    assert {
        "read topic audit.sharing.v1",
        "read topic audit.operations.v1",
        "describe_configs topic audit.sharing.v1",
        "describe_configs topic audit.operations.v1",
        "read topic share.*",
    } | {f"read topic {d.topic}" for d in CATALOG.shareable()} == rules


def test_the_audit_floor_denies_everyone_deleting_or_altering_the_audit_topics(
    principals: dict[str, Principal],
) -> None:
    floor = set(audit_floor())
    assert {str(rule) for rule in floor} == {
        f"User:* DENY {operation} topic {topic}"
        for topic in ("audit.sharing.v1", "audit.operations.v1")
        for operation in ("delete", "alter", "alter_configs")
    }
    assert floor <= declared_acls(principals.values())
    assert not floor & {acl for p in principals.values() for acl in p.acls}


def test_acls_become_kafka_s_codes() -> None:
    acl = Acl("civil", "group", "civil.", "prefixed", "read")
    assert acl_entry(acl) == (3, "civil.", 4, "User:civil", "*", 3, 3)
    deny = Acl("*", "topic", "audit.sharing.v1", "literal", "delete", "deny")
    assert acl_entry(deny) == (2, "audit.sharing.v1", 3, "User:*", "*", 6, 2)


def test_scram_salted_password_is_rfc_5802_hi_with_sha512() -> None:
    # Hi(password, salt, 1) = HMAC(password, salt + INT(1)) for one iteration.
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    expected = hmac.new(b"pw", b"salt" + b"\x00\x00\x00\x01", hashlib.sha512).digest()
    assert salted_password("pw", b"salt", iterations=1) == expected


def test_kafka_users_render_for_strimzi(principals: dict[str, Principal]) -> None:
    text = render_users(list(principals.values()), cluster="databus", command="databus acl ...")
    assert text.startswith("# KafkaUser resources")
    users = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(text) if doc}
    assert set(users) == set(principals)
    civil = users["civil"]
    assert civil["kind"] == "KafkaUser"
    assert civil["metadata"]["labels"]["strimzi.io/cluster"] == "databus"
    assert civil["spec"]["authentication"] == {"type": "scram-sha-512"}
    rules = civil["spec"]["authorization"]["acls"]
    assert {
        "resource": {
            "type": "topic",
            "name": "share.civil.health.death_certificate.v1",
            "patternType": "literal",
        },
        "operations": ["Read"],
        "host": "*",
    } in rules
    share = users["databus-share"]["spec"]["authorization"]["acls"]
    audit = next(r for r in share if r["resource"]["name"] == "audit.sharing.v1")
    assert audit["operations"] == ["Read", "Write"]
    txn = next(r for r in share if r["resource"]["type"] == "transactionalId")
    assert txn["resource"] == {
        "type": "transactionalId",
        "name": "databus-share-",
        "patternType": "prefixed",
    }
    # A KafkaUser cannot name User:*: every user carries the audit floor itself.
    for user in users.values():
        denied = [r for r in user["spec"]["authorization"]["acls"] if r.get("type") == "deny"]
        assert {r["resource"]["name"] for r in denied} == {
            "audit.sharing.v1",
            "audit.operations.v1",
        }
        assert all(r["operations"] == ["Alter", "AlterConfigs", "Delete"] for r in denied)
