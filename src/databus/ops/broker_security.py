"""The secure mode of the local broker: SASL/SCRAM for clients, ACLs enforced.

Clients authenticate with SCRAM-SHA-512 on the client listener; the broker talks to its
own controller with SASL/PLAIN as the super user ``admin`` (SCRAM credentials live in
the metadata log, which the controller must read before it could check them), so no
unauthenticated connection is a super user, not even on loopback. The StandardAuthorizer
denies everything no ACL allows. ``admin``'s password is random, made on the first
secure start and kept (mode 0600) in the broker directory, with an ``admin.env`` to
source for the ``DATABUS_*`` variables of a client.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databus.errors import BrokerError

#: The super user of a secure local broker.
ADMIN_USER = "admin"
#: The SASL mechanism clients use with a secure local broker.
SCRAM_MECHANISM = "SCRAM-SHA-512"
#: What ``<broker dir>/security`` says about how the data directory was formatted.
PLAINTEXT_MODE = "plaintext"
SECURE_MODE = "sasl-scram"
_JAAS_SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
_JAAS_PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
#: JAAS values are double-quoted, Kafka's SCRAM option parser splits on commas.
_NOT_IN_PASSWORDS = frozenset('",;\\ =[]')


@dataclass(frozen=True)
class BrokerSecurity:
    """What a secure broker needs to know: the super user's password."""

    admin_password: str

    def __post_init__(self) -> None:
        if not self.admin_password or _NOT_IN_PASSWORDS & set(self.admin_password):
            raise BrokerError(
                "the admin password must be non-empty, without quotes, commas, semicolons, "
                "backslashes, spaces, '=' or brackets"
            )

    def __repr__(self) -> str:
        return "BrokerSecurity(admin_password=***)"

    def server_properties(self) -> dict[str, str]:
        """The ``server.properties`` entries of secure mode (listener names are fixed by
        :func:`~databus.ops.broker.render_server_properties`)."""
        password = self.admin_password
        return {
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": (
                f'{_JAAS_PLAIN} required username="{ADMIN_USER}" password="{password}" '
                f'user_{ADMIN_USER}="{password}";'
            ),
            f"listener.name.sasl_plaintext.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                f'{_JAAS_SCRAM} required username="{ADMIN_USER}" password="{password}";'
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN_USER}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def format_arguments(self) -> list[str]:
        """``StorageTool format`` arguments that create ``admin``'s SCRAM credential."""
        credential = f"name={ADMIN_USER},password={self.admin_password}"
        return ["--add-scram", f"{SCRAM_MECHANISM}=[{credential}]"]

    def client_settings(self, bootstrap: str) -> dict[str, Any]:
        """Keyword arguments of :class:`~databus.settings.Settings` for ``admin``."""
        return {
            "bootstrap_servers": bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": SCRAM_MECHANISM,
            "sasl_username": ADMIN_USER,
            "sasl_password": self.admin_password,
        }


def new_password() -> str:
    """A random password safe in JAAS and SCRAM option syntax (URL-safe base64)."""
    return secrets.token_urlsafe(24)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (secrets), replacing any previous content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


def load_or_create_security(password_path: Path) -> BrokerSecurity:
    """The broker's security, with the password made on first use and then kept."""
    if password_path.is_file():
        return BrokerSecurity(password_path.read_text(encoding="utf-8").strip())
    security = BrokerSecurity(new_password())
    write_private(password_path, security.admin_password + "\n")
    return security


def env_file_text(settings: dict[str, Any], *, comment: str) -> str:
    """``export DATABUS_*=...`` lines for a shell, from :class:`Settings` keyword arguments."""
    lines = [f"# {comment}"]
    for name, value in settings.items():
        lines.append(f"export DATABUS_{name.upper()}={value}")
    return "\n".join(lines) + "\n"
