"""The derived users and ACLs as Strimzi ``KafkaUser`` resources (``acl render``).

Strimzi's user operator creates each user's SCRAM-SHA-512 credential (a Secret named
after the user, with ``password`` and ``sasl.jaas.config``) and sets its ACLs; the
Kafka cluster needs a SCRAM listener and ``authorization: {type: simple}``.

A KafkaUser names one user, so the audit floor (DENY for ``User:*`` of deleting,
altering or reconfiguring the audit topics, as ``acl apply`` sets it) is rendered as
the same DENY rules in every databus user: other users of the cluster are not covered.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace

from databus.governance.access import Acl, Principal, audit_floor

#: The Strimzi API version of the rendered resources (as for KafkaTopics).
STRIMZI_API_VERSION = "kafka.strimzi.io/v1beta2"
_RESOURCE_TYPES = {
    "topic": "topic",
    "group": "group",
    "cluster": "cluster",
    "transactional_id": "transactionalId",
}
_OPERATIONS = {
    "read": "Read",
    "write": "Write",
    "create": "Create",
    "describe": "Describe",
    "describe_configs": "DescribeConfigs",
    "delete": "Delete",
    "alter": "Alter",
    "alter_configs": "AlterConfigs",
}


def render_users(principals: list[Principal], *, cluster: str, command: str) -> str:
    """One ``KafkaUser`` per principal, in one YAML stream whose header names
    ``command``, the command that reproduces it."""
    lines = [
        "# KafkaUser resources for the Strimzi user operator, generated from the databus",
        "# catalog and grants (deploy/grants; only grants active on the --as-of day). Do not",
        "# edit; regenerate with",
        f"#   {command}",
        "# Every user also carries the audit floor: DENY Delete, Alter, AlterConfigs on the",
        "# audit topics (acl apply sets it for User:*, which a KafkaUser cannot name).",
    ]
    for principal in principals:
        floor = tuple(replace(rule, principal=principal.name) for rule in audit_floor())
        lines += [
            "---",
            f"apiVersion: {STRIMZI_API_VERSION}",
            "kind: KafkaUser",
            "metadata:",
            f"  name: {principal.name}",
            "  labels:",
            f"    strimzi.io/cluster: {_quote(cluster)}",
            "    app.kubernetes.io/part-of: databus",
            f"    databus/role: {_quote(principal.role.replace(' ', '-'))}",
            "  annotations:",
            f"    databus/why: {_quote(principal.why)}",
            "spec:",
            "  authentication:",
            "    type: scram-sha-512",
            "  authorization:",
            "    type: simple",
            "    acls:",
            *_acl_lines((*principal.acls, *floor)),
        ]
    return "\n".join(lines) + "\n"


def _acl_lines(acls: tuple[Acl, ...]) -> list[str]:
    """ACLs on the same resource (and of the same type) merged into one rule with
    several operations."""
    operations: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for acl in acls:
        where = (acl.resource_type, acl.name, acl.pattern, acl.permission)
        operations[where].append(_OPERATIONS[acl.operation])
    lines = []
    for (resource_type, name, pattern, permission), ops in operations.items():
        lines += [
            "      - resource:",
            f"          type: {_RESOURCE_TYPES[resource_type]}",
            f"          name: {_quote(name)}",
            f"          patternType: {pattern}",
            *(["        type: deny"] if permission == "deny" else []),
            f"        operations: [{', '.join(sorted(ops))}]",
            '        host: "*"',
        ]
    return lines


def _quote(value: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(value, ensure_ascii=False)
