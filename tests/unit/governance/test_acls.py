"""``acl apply`` converges: every ACL on a resource databus manages that the catalog and
the grants do not declare is removed, whoever it names and from whatever host."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from databus.governance.access import Acl, declared_acls, derive_access
from databus.governance.grants import Grant, GrantSet
from databus.governance.views import catalog_with_views
from databus.ops import kafka_protocol as kp
from databus.ops.acls import Binding, credentials_text, stale_bindings
from databus.settings import Settings

TODAY = dt.date(2026, 6, 1)
DEATHS = "health.death_certificate.v1"
GRANTS = GrantSet(
    (Grant("civil", DEATHS, ("person_ref", "date_of_death"), "p", dt.date(2030, 1, 1)),)
)
PRINCIPALS = derive_access(GRANTS, today=TODAY)
DECLARED = declared_acls(PRINCIPALS)
USERS = [p.name for p in PRINCIPALS]
TOPICS = [d.topic for d in catalog_with_views(GRANTS)]
TOPIC, GROUP, CLUSTER = (kp.RESOURCE_TYPES[t] for t in ("topic", "group", "cluster"))
LITERAL, PREFIXED = kp.PATTERN_TYPES["literal"], kp.PATTERN_TYPES["prefixed"]
READ, DELETE, DESCRIBE = (kp.OPERATIONS[o] for o in ("read", "delete", "describe"))
ALLOW, DENY = kp.PERMISSION_ALLOW, kp.PERMISSION_DENY


def binding(
    name: str,
    principal: str = "User:civil",
    *,
    resource: int = TOPIC,
    pattern: int = LITERAL,
    host: str = "*",
    operation: int = READ,
    permission: int = ALLOW,
) -> Binding:
    return Binding(resource, name, pattern, principal, host, operation, permission)


def removed(*present: Binding) -> list[Binding]:
    declared = {Binding.of(acl) for acl in DECLARED}
    return stale_bindings([*declared, *present], DECLARED, users=USERS, topics=TOPICS)


STALE = [
    pytest.param(binding(DEATHS, host="10.0.0.7"), id="host-restricted-read-of-a-source"),
    pytest.param(binding("share.civil.health.death_certificate.v1", host="10.0.0.7"),
                 id="host-restricted-copy-of-a-declared-rule"),
    pytest.param(binding(DEATHS, "User:*"), id="wildcard-principal-on-a-source"),
    pytest.param(binding("share.", "User:*", pattern=PREFIXED), id="wildcard-on-every-share"),
    pytest.param(binding("*", "User:mallory"), id="literal-wildcard-topic"),
    pytest.param(binding("hrss", "User:mallory", pattern=PREFIXED),
                 id="prefix-that-covers-our-topics"),
    pytest.param(binding("audit.sharing.v1", "User:auditor", operation=DELETE, permission=DENY),
                 id="undeclared-deny"),
    pytest.param(binding("civil.x", "User:mallory", resource=GROUP),
                 id="a-group-under-an-agency-prefix"),
    pytest.param(binding("kafka-cluster", "User:monitor", resource=CLUSTER, operation=DESCRIBE),
                 id="anything-on-the-cluster"),
    pytest.param(binding("billing.invoices", "User:hrss"), id="a-derived-user-elsewhere"),
]  # fmt: skip


@pytest.mark.parametrize("stale", STALE)
def test_undeclared_acls_on_our_resources_are_removed(stale: Binding) -> None:
    assert removed(stale) == [stale]


def test_other_applications_acls_on_their_own_resources_stay() -> None:
    theirs = [
        binding("billing.invoices", "User:billing"),
        binding("billing.", "User:*", pattern=PREFIXED),
        binding("billing-app", "User:billing", resource=GROUP),
    ]
    assert removed(*theirs) == []


def test_the_declared_set_removes_nothing_and_includes_the_floor() -> None:
    assert removed() == []
    floor = {b for b in (Binding.of(a) for a in DECLARED) if b.permission == DENY}
    assert {str(b) for b in floor} >= {"User:* DENY delete topic audit.sharing.v1"}


def test_a_binding_reads_as_what_it_allows_or_denies() -> None:
    assert str(binding(DEATHS, host="10.0.0.7")) == (
        "User:civil read topic health.death_certificate.v1 from host 10.0.0.7"
    )
    assert str(binding("share.", "User:*", pattern=PREFIXED)) == "User:* read topic share.*"
    deny = Binding.of(Acl("*", "topic", "audit.sharing.v1", "literal", "alter", "deny"))
    assert str(deny) == "User:* DENY alter topic audit.sharing.v1"
    assert str(binding(DEATHS, operation=13)) == "User:civil create_tokens topic " + DEATHS
    assert str(binding(DEATHS, operation=99)).startswith("User:civil operation#99 ")


def lines(text: str) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in text.splitlines()[1:])
    return dict(pairs)


def test_credential_files_speak_tls_when_the_admin_does(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    tls = Settings(bootstrap_servers="127.0.0.1:9094", security_protocol="SASL_SSL", ssl_cafile=ca)
    values = lines(credentials_text(tls, "civil", "secret"))
    assert values["DATABUS_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert values["DATABUS_SSL_CAFILE"] == str(ca)
    assert values["DATABUS_SASL_USERNAME"] == "civil"
    plain = lines(credentials_text(Settings(bootstrap_servers="127.0.0.1:9094"), "civil", "x"))
    assert plain["DATABUS_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert "DATABUS_SSL_CAFILE" not in plain
