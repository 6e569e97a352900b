"""Who may do what on the broker, derived from the catalog and the grants.

* an **agency** (every owner and every consumer) writes its own source topics (and
  dead letters of its rejected records), reads the share topics of its *active*
  grants, and uses only consumer groups named ``<agency>.<anything>``;
* the **decision worker** (``databus-decisions``, a Faust app) reads the sources and the
  clock, writes the decisions, the clock and dead letters, and owns the topics,
  group and transactional ids prefixed by its app id (changelogs, the assignor's
  leader topic, exactly-once producers);
* the **share worker** (``databus-share``) reads every shareable topic, writes the share
  topics, the audit trail, dead letters and its ``grants.applied`` operations records,
  and owns its group and transactional ids;
* the **clock** (``databus-clock``) reads and writes ``system.clock.v1`` (``clock tick``
  reads the last ticks to guard against mistakes) and writes its operations records;
* the **auditor** reads both audit trails and their retention, and, to cross-check the
  sharing audit against what was shared, the share topics and the shareable topics.

And for everyone (``User:*``), the **audit floor**: DENY delete, alter and alter_configs
on the audit topics, so that no ALLOW added later (by mistake or by an insider) lets a
principal delete audit records or shorten their retention. The super user (``admin``)
is configured on the broker, not here; super users bypass ACLs, which is why signed
checkpoints kept outside Kafka are the real defence of the audit trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from databus.catalog import AUDIT, CATALOG, CLOCK, DLQ, OPERATIONS, Catalog
from databus.governance.grants import SHARE_PREFIX, GrantSet
from databus.governance.projector import SHARE_SOURCE
from databus.streams.names import APP_ID as DECISIONS_APP

ResourceType = Literal["topic", "group", "cluster", "transactional_id"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal[
    "read", "write", "create", "describe", "describe_configs", "delete", "alter", "alter_configs"
]
Permission = Literal["allow", "deny"]
Role = Literal["agency", "decision worker", "share worker", "clock", "auditor"]

SHARE_APP = SHARE_SOURCE
CLOCK_USER = "databus-clock"
AUDITOR = "auditor"
#: Kafka's wildcard principal (``User:*``): every authenticated user.
EVERYONE = "*"
#: The audit topics, whose records nobody may delete and whose retention nobody may
#: shorten (but super users, who bypass ACLs).
AUDIT_TOPICS = (AUDIT.topic, OPERATIONS.topic)
FLOOR_OPERATIONS: tuple[Operation, ...] = ("delete", "alter", "alter_configs")
#: The separator between an agency's name and the rest of its consumer group ids.
GROUP_SEPARATOR = "."


@dataclass(frozen=True, order=True, slots=True)
class Acl:
    """One rule for one user (``*``: everyone), from any host; ALLOW unless it says DENY."""

    principal: str
    resource_type: ResourceType
    name: str
    pattern: Pattern
    operation: Operation
    permission: Permission = "allow"

    def __str__(self) -> str:
        star = "*" if self.pattern == "prefixed" else ""
        deny = "DENY " if self.permission == "deny" else ""
        return (
            f"User:{self.principal} {deny}{self.operation} {self.resource_type} {self.name}{star}"
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """A broker user, why it exists, and everything it may do."""

    name: str
    role: Role
    why: str
    acls: tuple[Acl, ...]


def derive_access(
    grants: GrantSet, *, today: dt.date, catalog: Catalog = CATALOG
) -> list[Principal]:
    """Every user databus needs and its ACLs; grants count only if active ``today``."""
    principals = [_agency(name, grants, today, catalog) for name in _agencies(grants, catalog)]
    principals += [
        _decision_worker(catalog),
        _share_worker(catalog),
        _clock(),
        _auditor(catalog),
    ]
    return principals


def _agencies(grants: GrantSet, catalog: Catalog) -> list[str]:
    owners = {dataset.owner for dataset in catalog.sources()}
    return sorted(owners | set(grants.consumers()))


def _agency(name: str, grants: GrantSet, today: dt.date, catalog: Catalog) -> Principal:
    owned = [d.topic for d in catalog.sources() if d.owner == name]
    shares = sorted(g.share_topic for g in grants.for_consumer(name) if g.active_on(today))
    acls = [_topic(name, topic, "write") for topic in owned]
    if owned:
        acls.append(_topic(name, DLQ.topic, "write"))  # its publisher's rejected records
    acls += [_topic(name, topic, "read") for topic in shares]
    acls.append(Acl(name, "group", name + GROUP_SEPARATOR, "prefixed", "read"))
    parts = []
    if owned:
        parts.append(f"publishes {', '.join(owned)}")
    if shares:
        parts.append(f"reads {len(shares)} share topic{'s' if len(shares) > 1 else ''}")
    return Principal(name, "agency", "; ".join(parts) or "no active grant", tuple(acls))


def _decision_worker(catalog: Catalog) -> Principal:
    name = DECISIONS_APP
    inputs = [d.topic for d in catalog.sources()] + [CLOCK.topic]
    outputs = [d.topic for d in catalog if d.name.startswith("derived.")]
    acls = [_topic(name, topic, "read") for topic in inputs]
    acls += [_topic(name, topic, "write") for topic in [*outputs, DLQ.topic, CLOCK.topic]]
    own = name + "-"
    acls += [
        Acl(name, "topic", own, "prefixed", operation)
        for operation in ("read", "write", "create", "describe_configs")
    ]
    acls.append(Acl(name, "group", name, "literal", "read"))
    acls.append(Acl(name, "transactional_id", own, "prefixed", "write"))
    why = "the Faust decision worker: sources and ticks in, decisions out"
    return Principal(name, "decision worker", why, tuple(acls))


def _share_worker(catalog: Catalog) -> Principal:
    name = SHARE_APP
    acls = [_topic(name, dataset.topic, "read") for dataset in catalog.shareable()]
    acls.append(Acl(name, "topic", SHARE_PREFIX, "prefixed", "write"))
    acls += [_topic(name, AUDIT.topic, op) for op in ("read", "write")]
    acls.append(_topic(name, OPERATIONS.topic, "write"))  # grants.applied
    acls.append(_topic(name, DLQ.topic, "write"))
    acls.append(Acl(name, "group", name, "literal", "read"))
    acls.append(Acl(name, "transactional_id", name + "-", "prefixed", "write"))
    why = "projects records into share topics, with the audit trail"
    return Principal(name, "share worker", why, tuple(acls))


def _clock() -> Principal:
    name = CLOCK_USER
    acls = [_topic(name, CLOCK.topic, op) for op in ("read", "write", "describe")]
    acls.append(_topic(name, OPERATIONS.topic, "write"))
    why = "publishes the daily clock ticks (databus clock tick), audited"
    return Principal(name, "clock", why, tuple(acls))


def _auditor(catalog: Catalog) -> Principal:
    acls = [
        _topic(AUDITOR, topic, op) for topic in AUDIT_TOPICS for op in ("read", "describe_configs")
    ]
    # The cross-check: what the audit says was shared must be in the share topics, and
    # what it says was read must be in the source topics.
    acls += [_topic(AUDITOR, dataset.topic, "read") for dataset in catalog.shareable()]
    acls.append(Acl(AUDITOR, "topic", SHARE_PREFIX, "prefixed", "read"))  # expired ones too
    why = "verifies the audit trails and cross-checks them against the shared records"
    return Principal(AUDITOR, "auditor", why, tuple(acls))


def audit_floor() -> tuple[Acl, ...]:
    """DENY for everyone of deleting, altering or reconfiguring the audit topics."""
    return tuple(
        Acl(EVERYONE, "topic", topic, "literal", operation, "deny")
        for topic in AUDIT_TOPICS
        for operation in FLOOR_OPERATIONS
    )


def _topic(principal: str, topic: str, operation: Operation) -> Acl:
    return Acl(principal, "topic", topic, "literal", operation)


def all_acls(principals: Iterable[Principal]) -> set[Acl]:
    """Every ACL of these principals."""
    return {acl for principal in principals for acl in principal.acls}


def declared_acls(principals: Iterable[Principal]) -> set[Acl]:
    """Every ACL ``acl apply`` makes the broker hold: the principals' and the floor."""
    return all_acls(principals) | set(audit_floor())
