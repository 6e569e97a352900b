"""Applying derived users and ACLs to a broker (``databus acl apply``).

Users get SCRAM-SHA-512 credentials; a user that has none gets a random password,
written (mode 0600) to ``<credentials dir>/<user>.env`` for handing over. Existing
passwords are never changed unless asked (``rotate``). ACLs converge on the derived
set: missing ones are created, and stale ones removed, where "ours" means ACLs of a
derived user or on a topic of the catalog or a share topic. Anything else on the
cluster (other applications' users and ACLs) is left alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code

from databus.errors import DatabusError
from databus.governance.access import Acl, Principal, all_acls
from databus.governance.grants import SHARE_PREFIX
from databus.ops import kafka_protocol as kp
from databus.ops.broker_security import env_file_text, new_password, write_private
from databus.settings import DEFAULT_SASL_MECHANISM, Settings

#: SCRAM iterations: Kafka's minimum for SCRAM-SHA-512, as its own tools use.
SCRAM_ITERATIONS = 4096
_PRINCIPAL_PREFIX = "User:"
_CODES = {
    "resource_type": kp.RESOURCE_TYPES,
    "pattern": kp.PATTERN_TYPES,
    "operation": kp.OPERATIONS,
}
_NAMES = {kind: {code: name for name, code in codes.items()} for kind, codes in _CODES.items()}


class AccessError(DatabusError):
    """The broker refused to change users or ACLs."""


@dataclass
class AccessChanges:
    """What ``apply_access`` did (or, in a dry run, would do)."""

    users_created: list[str] = field(default_factory=list)
    passwords_rotated: list[str] = field(default_factory=list)
    credential_files: list[Path] = field(default_factory=list)
    added: list[Acl] = field(default_factory=list)
    removed: list[Acl] = field(default_factory=list)
    unchanged: int = 0
    other_users: list[str] = field(default_factory=list)
    """SCRAM users on the broker that databus does not derive (left alone)."""


def acl_entry(acl: Acl) -> kp.AclEntry:
    """An ACL as Kafka's request fields (ALLOW, any host)."""
    return (
        kp.RESOURCE_TYPES[acl.resource_type],
        acl.name,
        kp.PATTERN_TYPES[acl.pattern],
        _PRINCIPAL_PREFIX + acl.principal,
        "*",
        kp.OPERATIONS[acl.operation],
        kp.PERMISSION_ALLOW,
    )


def _acl_from(resource: dict[str, Any], entry: dict[str, Any]) -> Acl | None:
    """An ACL read back, if it is one of the kinds databus writes."""
    resource_type = _NAMES["resource_type"].get(resource["resource_type"])
    pattern = _NAMES["pattern"].get(resource["pattern_type"])
    operation = _NAMES["operation"].get(entry["operation"])
    principal = entry["principal"]
    if (
        resource_type is None
        or pattern not in ("literal", "prefixed")
        or operation is None
        or entry["host"] != "*"
        or entry["permission_type"] != kp.PERMISSION_ALLOW
        or not principal.startswith(_PRINCIPAL_PREFIX)
    ):
        return None
    return Acl(
        principal.removeprefix(_PRINCIPAL_PREFIX),
        cast("Any", resource_type),
        resource["resource_name"],
        cast("Any", pattern),
        cast("Any", operation),
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
        return kp.as_dict(await self._admin._send_request(request))

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

    async def acls(self) -> set[Acl]:
        """Every ACL on the cluster of the kinds databus writes."""
        any_ = (1, None, 1, None, None, 1, kp.PERMISSION_ANY)
        response = await self._send(kp.DescribeAcls(any_))
        _raise(response["error_code"], response["error_message"], "list ACLs")
        found = set()
        for resource in response["resources"]:
            for entry in resource["acls"]:
                acl = _acl_from(resource, entry)
                if acl is not None:
                    found.add(acl)
        return found

    async def create(self, acls: Iterable[Acl]) -> None:
        entries = [acl_entry(acl) for acl in sorted(acls)]
        if entries:
            response = await self._send(kp.CreateAcls(entries))
            for result in response["results"]:
                _raise(result["error_code"], result["error_message"], "create an ACL")

    async def delete(self, acls: Iterable[Acl]) -> None:
        entries = [acl_entry(acl) for acl in sorted(acls)]
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


def _on_our_topic(acl: Acl, topics: set[str]) -> bool:
    """An ACL on a catalog topic or a share topic (whoever holds it)."""
    return acl.resource_type == "topic" and (
        acl.name in topics or acl.name.startswith(SHARE_PREFIX)
    )


def credentials_text(settings: Settings, user: str, password: str) -> str:
    """The ``DATABUS_*`` settings of one user, as lines to source in a shell."""
    protocol = settings.security_protocol if settings.uses_sasl else "SASL_PLAINTEXT"
    values = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": protocol,
        "sasl_mechanism": DEFAULT_SASL_MECHANISM,
        "sasl_username": user,
        "sasl_password": password,
    }
    return env_file_text(values, comment=f"Kafka credentials of {user} (databus acl apply).")


async def apply_access(
    settings: Settings,
    principals: list[Principal],
    *,
    managed_topics: Iterable[str],
    credentials_dir: Path,
    rotate: Iterable[str] = (),
    dry_run: bool = False,
) -> AccessChanges:
    """Make the broker's users and ACLs those of ``principals`` (see the module)."""
    names = {principal.name for principal in principals}
    unknown = set(rotate) - names
    if unknown:
        raise AccessError(f"cannot rotate {', '.join(sorted(unknown))}: not a databus user")
    topics = set(managed_topics)
    changes = AccessChanges()
    async with SecurityAdmin(settings) as admin:
        # ACLs first: a user without DESCRIBE on the cluster gets a clean refusal there,
        # while Kafka 4.3.1 answers its DescribeUserScramCredentials(all users) with no
        # response at all (a NullPointerException in the broker, seen here).
        present = await admin.acls()
        existing_users = await admin.scram_users()
        changes.other_users = sorted(existing_users - names - {settings.principal()})
        for name in sorted(names):
            rotating = name in set(rotate)
            if name in existing_users and not rotating:
                continue
            listed = changes.passwords_rotated if name in existing_users else changes.users_created
            listed.append(name)
            if dry_run:
                continue
            password = new_password()
            await admin.set_password(name, password)
            path = credentials_dir / f"{name}.env"
            write_private(path, credentials_text(settings, name, password))
            changes.credential_files.append(path)
        wanted = all_acls(principals)
        ours = {acl for acl in present if acl.principal in names or _on_our_topic(acl, topics)}
        changes.added = sorted(wanted - present)
        changes.removed = sorted(ours - wanted)
        changes.unchanged = len(wanted & present)
        if not dry_run:
            await admin.create(changes.added)
            await admin.delete(changes.removed)
    return changes
