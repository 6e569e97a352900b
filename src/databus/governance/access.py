"""Who may do what on the broker, derived from the catalog and the grants.

* an **agency** (every owner and every consumer) writes its own source topics (and
  dead letters of its rejected records), reads the share topics of its *active*
  grants, and uses only consumer groups named ``<agency>.<anything>``;
* the **decision worker** (``databus-decisions``, a Faust app) reads the sources and the
  clock, writes the decisions, the clock and dead letters, and owns the topics,
  group and transactional ids prefixed by its app id (changelogs, the assignor's
  leader topic, exactly-once producers);
* the **share worker** (``databus-share``) reads every shareable topic, writes the share
  topics, the audit trail and dead letters, and owns its group and transactional ids;
* the **auditor** reads the audit trail.

Nobody else reads a source topic: a consumer sees only its projections. The super
user (``admin``) is configured on the broker, not here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from databus.catalog import AUDIT, CATALOG, CLOCK, DLQ, Catalog
from databus.governance.grants import SHARE_PREFIX, GrantSet
from databus.governance.projector import SHARE_SOURCE
from databus.streams.names import APP_ID as DECISIONS_APP

ResourceType = Literal["topic", "group", "cluster", "transactional_id"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["read", "write", "create", "describe", "describe_configs"]
Role = Literal["agency", "decision worker", "share worker", "auditor"]

SHARE_APP = SHARE_SOURCE
AUDITOR = "auditor"
#: The separator between an agency's name and the rest of its consumer group ids.
GROUP_SEPARATOR = "."


@dataclass(frozen=True, order=True, slots=True)
class Acl:
    """One ALLOW rule for one user, from any host."""

    principal: str
    resource_type: ResourceType
    name: str
    pattern: Pattern
    operation: Operation

    def __str__(self) -> str:
        star = "*" if self.pattern == "prefixed" else ""
        return f"User:{self.principal} {self.operation} {self.resource_type} {self.name}{star}"


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
    principals += [_decision_worker(catalog), _share_worker(catalog), _auditor()]
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
    acls.append(_topic(name, DLQ.topic, "write"))
    acls.append(Acl(name, "group", name, "literal", "read"))
    acls.append(Acl(name, "transactional_id", name + "-", "prefixed", "write"))
    why = "projects records into share topics, with the audit trail"
    return Principal(name, "share worker", why, tuple(acls))


def _auditor() -> Principal:
    acls = (_topic(AUDITOR, AUDIT.topic, "read"),)
    return Principal(AUDITOR, "auditor", "verifies the audit trail", acls)


def _topic(principal: str, topic: str, operation: Operation) -> Acl:
    return Acl(principal, "topic", topic, "literal", operation)


def all_acls(principals: Iterable[Principal]) -> set[Acl]:
    """Every ACL of these principals."""
    return {acl for principal in principals for acl in principal.acls}
