"""Applying derived users and ACLs to a broker (``databus acl apply``).

Users get SCRAM-SHA-512 credentials; a user that has none gets a random password,
written (mode 0600) to ``<credentials dir>/<user>.env`` for handing over. Existing
passwords are never changed unless asked (``rotate``).

ACLs converge on the declared set (the principals' rules and the audit floor's DENY
rules): missing ones are created, and every other ACL on a resource databus manages is
removed, whoever it names (a wildcard ``User:*`` too), from whatever host, ALLOW or
DENY. Managed resources are the catalog's topics (with the share views), every
resource a declared rule names (topic, group and transactional-id prefixes included)
and the cluster; an ACL whose pattern covers one of them (a literal ``*``, a prefix
like ``hrss``) is on it. ACLs of a derived user are ours wherever they are. Anything
else on the cluster (other applications' users and ACLs on their own topics) is left
alone.

The plan is made first, read-only; then (not in a dry run) an ``acl.apply`` record is
written to ``audit.operations.v1``, and only then is anything changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code

from databus.errors import AccessError
from databus.governance.access import Acl, Principal, declared_acls
from databus.governance.operations import operation_record, record_operation
from databus.internals import send_admin_request
from databus.ops import kafka_protocol as kp
from databus.ops.broker_security import env_file_text, new_password, write_private
from databus.records.audit import OperationAudit
from databus.settings import DEFAULT_SASL_MECHANISM, Settings

#: SCRAM iterations: Kafka's minimum for SCRAM-SHA-512, as its own tools use.
SCRAM_ITERATIONS = 4096
_PRINCIPAL_PREFIX = "User:"
_ANY_HOST = "*"
_NAMES = {
    kind: {code: name for name, code in codes.items()}
    for kind, codes in {
        "resource_type": kp.RESOURCE_TYPES,
        "pattern": kp.PATTERN_TYPES,
        "operation": kp.OPERATIONS,
        "permission": kp.PERMISSIONS,
    }.items()
}
_LITERAL, _PREFIXED = kp.PATTERN_TYPES["literal"], kp.PATTERN_TYPES["prefixed"]
_CLUSTER = kp.RESOURCE_TYPES["cluster"]


@dataclass(frozen=True, order=True, slots=True)
class Binding:
    """One ACL binding exactly as Kafka holds it (codes, full principal, host), so that
    any binding read back, of any kind, can be shown and deleted as it is."""

    resource_type: int
    name: str
    pattern: int
    principal: str
    host: str
    operation: int
    permission: int

    @classmethod
    def of(cls, acl: Acl) -> Binding:
        """A declared rule (from any host)."""
        return cls(
            kp.RESOURCE_TYPES[acl.resource_type],
            acl.name,
            kp.PATTERN_TYPES[acl.pattern],
            _PRINCIPAL_PREFIX + acl.principal,
            _ANY_HOST,
            kp.OPERATIONS[acl.operation],
            kp.PERMISSIONS[acl.permission],
        )

    @property
    def entry(self) -> kp.AclEntry:
        """As Kafka's request fields: a binding to create, or the filter of exactly it."""
        return (
            self.resource_type,
            self.name,
            self.pattern,
            self.principal,
            self.host,
            self.operation,
            self.permission,
        )

    def __str__(self) -> str:
        def name(kind: str, code: int) -> str:
            return _NAMES[kind].get(code, f"{kind}#{code}")

        star = "*" if self.pattern == _PREFIXED else ""
        deny = "DENY " if self.permission == kp.PERMISSION_DENY else ""
        host = f" from host {self.host}" if self.host != _ANY_HOST else ""
        resource = name("resource_type", self.resource_type)
        operation = name("operation", self.operation)
        return f"{self.principal} {deny}{operation} {resource} {self.name}{star}{host}"


def acl_entry(acl: Acl) -> kp.AclEntry:
    """A declared rule as Kafka's request fields (from any host)."""
    return Binding.of(acl).entry


@dataclass(frozen=True)
class ManagedResources:
    """The resources whose ACLs databus owns, per Kafka resource type code."""

    literals: dict[int, frozenset[str]]
    prefixes: dict[int, frozenset[str]]

    @classmethod
    def of(cls, declared: Iterable[Acl], topics: Iterable[str]) -> ManagedResources:
        literals: dict[int, set[str]] = {kp.RESOURCE_TYPES["topic"]: set(topics)}
        prefixes: dict[int, set[str]] = {}
        for acl in declared:
            code = kp.RESOURCE_TYPES[acl.resource_type]
            into = prefixes if acl.pattern == "prefixed" else literals
            into.setdefault(code, set()).add(acl.name)
        return cls(
            {code: frozenset(names) for code, names in literals.items()},
            {code: frozenset(names) for code, names in prefixes.items()},
        )

    def covers(self, binding: Binding) -> bool:
        """Whether the binding's resource pattern reaches a managed resource."""
        if binding.resource_type == _CLUSTER:
            return True
        literals = self.literals.get(binding.resource_type, frozenset())
        prefixes = self.prefixes.get(binding.resource_type, frozenset())
        name = binding.name
        if binding.pattern == _LITERAL:
            if name == "*":  # Kafka's wildcard resource: every one of its type
                return bool(literals or prefixes)
            return name in literals or any(name.startswith(p) for p in prefixes)
        if binding.pattern == _PREFIXED:
            return any(n.startswith(name) for n in literals) or any(
                p.startswith(name) or name.startswith(p) for p in prefixes
            )
        return False


def stale_bindings(
    present: Iterable[Binding],
    declared: set[Acl],
    *,
    users: Iterable[str],
    topics: Iterable[str],
) -> list[Binding]:
    """The bindings ``acl apply`` removes: not declared, and on a managed resource or
    naming a derived user."""
    wanted = {Binding.of(acl) for acl in declared}
    managed = ManagedResources.of(declared, topics)
    ours = {_PRINCIPAL_PREFIX + user for user in users}
    return sorted(
        binding
        for binding in present
        if binding not in wanted and (binding.principal in ours or managed.covers(binding))
    )


def salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """SCRAM's SaltedPassword (RFC 5802 Hi()) for SHA-512: what the broker is sent."""
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


class SecurityAdmin:
    """The admin calls ``acl apply`` needs, over one aiokafka admin connection."""

    def __init__(self, settings: Settings) -> None:
        self._admin = AIOKafkaAdminClient(
            **settings.kafka_client_options(), client_id=f"{settings.client_id}-acl"
        )

    async def __aenter__(self) -> SecurityAdmin:
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._admin.close()

    async def _send(self, request: Any) -> dict[str, Any]:
        return kp.as_dict(await send_admin_request(self._admin, request))

    async def scram_users(self) -> set[str]:
        """Users with a SCRAM credential."""
        response = await self._send(kp.DescribeUserScramCredentials())
        _raise(response["error_code"], response["error_message"], "list SCRAM users")
        return {result["user"] for result in response["results"] if not result["error_code"]}

    async def set_password(self, user: str, password: str) -> None:
        """Create or replace ``user``'s SCRAM-SHA-512 credential."""
        salt = os.urandom(32)
        mechanism = kp.SCRAM_MECHANISMS[DEFAULT_SASL_MECHANISM]
        upsertion = (user, mechanism, SCRAM_ITERATIONS, salt, salted_password(password, salt))
        response = await self._send(kp.AlterUserScramCredentials([upsertion]))
        for result in response["results"]:
            _raise(result["error_code"], result["error_message"], f"set the password of {user}")

    async def bindings(self) -> set[Binding]:
        """Every ACL binding on the cluster, of any kind."""
        any_ = (1, None, 1, None, None, 1, kp.PERMISSION_ANY)
        response = await self._send(kp.DescribeAcls(any_))
        _raise(response["error_code"], response["error_message"], "list ACLs")
        return {
            Binding(
                resource["resource_type"],
                resource["resource_name"],
                resource["pattern_type"],
                entry["principal"],
                entry["host"],
                entry["operation"],
                entry["permission_type"],
            )
            for resource in response["resources"]
            for entry in resource["acls"]
        }

    async def create(self, bindings: Iterable[Binding]) -> None:
        entries = [binding.entry for binding in sorted(bindings)]
        if entries:
            response = await self._send(kp.CreateAcls(entries))
            for result in response["results"]:
                _raise(result["error_code"], result["error_message"], "create an ACL")

    async def delete(self, bindings: Iterable[Binding]) -> None:
        entries = [binding.entry for binding in sorted(bindings)]
        if entries:
            response = await self._send(kp.DeleteAcls(entries))
            for result in response["filter_results"]:
                _raise(result["error_code"], result["error_message"], "delete an ACL")


#: ClusterAuthorizationFailed: the user may not manage users and ACLs.
_CLUSTER_AUTHORIZATION_FAILED = 31


def _raise(code: int, message: str | None, what: str) -> None:
    if code == _CLUSTER_AUTHORIZATION_FAILED:
        raise AccessError(
            f"the broker refused to {what} (CLUSTER_AUTHORIZATION_FAILED): manage users and "
            "ACLs as the super user (the local secure broker's admin.env)"
        )
    if code:
        raise AccessError(f"the broker refused to {what}: {message or for_code(code).__name__}")


def credentials_text(settings: Settings, user: str, password: str) -> str:
    """The ``DATABUS_*`` settings of one user, as lines to source in a shell: SASL over
    TLS (with the CA file) when ``settings`` (the admin's) use TLS."""
    tls = settings.security_protocol.endswith("SSL")
    values: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
        "sasl_mechanism": DEFAULT_SASL_MECHANISM,
        "sasl_username": user,
        "sasl_password": password,
    }
    if tls and settings.ssl_cafile is not None:
        values["ssl_cafile"] = settings.ssl_cafile
    return env_file_text(values, comment=f"Kafka credentials of {user} (databus acl apply).")


@dataclass
class AccessChanges:
    """What ``apply_access`` did (or, in a dry run, would do)."""

    users_created: list[str] = field(default_factory=list)
    passwords_rotated: list[str] = field(default_factory=list)
    credential_files: list[Path] = field(default_factory=list)
    added: list[Binding] = field(default_factory=list)
    removed: list[Binding] = field(default_factory=list)
    unchanged: int = 0
    other_users: list[str] = field(default_factory=list)
    """SCRAM users on the broker that databus does not derive (left alone)."""

    def audit_details(self) -> dict[str, Any]:
        """What the ``acl.apply`` operations record says (names and rules; no password)."""
        return {
            "users_created": self.users_created,
            "passwords_rotated": self.passwords_rotated,
            "acls_added": [str(binding) for binding in self.added],
            "acls_removed": [str(binding) for binding in self.removed],
            "counts": {
                "users_created": len(self.users_created),
                "passwords_rotated": len(self.passwords_rotated),
                "acls_added": len(self.added),
                "acls_removed": len(self.removed),
                "acls_unchanged": self.unchanged,
            },
        }


Recorder = Callable[[Settings, OperationAudit], Awaitable[None]]


async def apply_access(
    settings: Settings,
    principals: list[Principal],
    *,
    managed_topics: Iterable[str],
    credentials_dir: Path,
    rotate: Iterable[str] = (),
    dry_run: bool = False,
    record: Recorder = record_operation,
) -> AccessChanges:
    """Make the broker's users and ACLs those of ``principals`` (see the module)."""
    names = {principal.name for principal in principals}
    rotating = set(rotate)
    unknown = rotating - names
    if unknown:
        raise AccessError(f"cannot rotate {', '.join(sorted(unknown))}: not a databus user")
    changes = AccessChanges()
    async with SecurityAdmin(settings) as admin:
        # ACLs first: a user without DESCRIBE on the cluster gets a clean refusal there,
        # while Kafka 4.3.1 answers its DescribeUserScramCredentials(all users) with no
        # response at all (a NullPointerException in the broker, seen here).
        present = await admin.bindings()
        existing_users = await admin.scram_users()
        changes.other_users = sorted(existing_users - names - {settings.principal()})
        for name in sorted(names):
            if name in existing_users and name not in rotating:
                continue
            listed = changes.passwords_rotated if name in existing_users else changes.users_created
            listed.append(name)
        declared = declared_acls(principals)
        wanted = {Binding.of(acl) for acl in declared}
        changes.added = sorted(wanted - present)
        changes.removed = stale_bindings(present, declared, users=names, topics=managed_topics)
        changes.unchanged = len(wanted & present)
        if dry_run:
            return changes
        await record(
            settings,
            operation_record(settings, "acl.apply", "done", details=changes.audit_details()),
        )
        for name in [*changes.users_created, *changes.passwords_rotated]:
            password = new_password()
            await admin.set_password(name, password)
            path = credentials_dir / f"{name}.env"
            write_private(path, credentials_text(settings, name, password))
            changes.credential_files.append(path)
        await admin.create(changes.added)
        await admin.delete(changes.removed)
    return changes
