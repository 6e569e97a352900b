"""The secure mode of the local broker: TLS and SASL/SCRAM for clients, ACLs enforced.

Every listener is SASL_SSL: there is no plaintext listener at all. Clients authenticate
with SCRAM-SHA-512 over TLS and verify the broker's certificate against the CA the
project made (:mod:`databus.ops.tls`); the broker talks to its own controller over TLS
too, with SASL/PLAIN as the super user ``admin`` (SCRAM credentials live in the metadata
log, which the controller must read before it could check them), so no unauthenticated
connection is a super user, not even on loopback. The StandardAuthorizer denies
everything no ACL allows. ``admin``'s password is random, made on the first secure start
and kept (mode 0600) in the broker directory, with an ``admin.env`` to source for the
``DATABUS_*`` variables of a client.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databus.errors import BrokerError
from databus.ops.private_files import write_private
from databus.ops.tls import BrokerTls

__all__ = [
    "ADMIN_USER",
    "PLAINTEXT_MODE",
    "SCRAM_MECHANISM",
    "SECURE_MODE",
    "SECURE_PROTOCOL",
    "BrokerSecurity",
    "admin_client_settings",
    "env_file_text",
    "load_or_create_password",
    "new_password",
    "write_private",
]

#: The super user of a secure local broker.
ADMIN_USER = "admin"
#: The SASL mechanism clients use with a secure local broker.
SCRAM_MECHANISM = "SCRAM-SHA-512"
#: The security protocol of every listener of a secure local broker.
SECURE_PROTOCOL = "SASL_SSL"
#: What ``<broker dir>/security`` says about how the data directory was formatted.
PLAINTEXT_MODE = "plaintext"
SECURE_MODE = "sasl-scram"
_JAAS_SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
_JAAS_PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
#: JAAS values are double-quoted, Kafka's SCRAM option parser splits on commas.
_NOT_IN_PASSWORDS = frozenset('",;\\ =[]')


@dataclass(frozen=True)
class BrokerSecurity:
    """What a secure broker needs to know: the super user's password, its certificates."""

    admin_password: str
    tls: BrokerTls

    def __post_init__(self) -> None:
        if not self.admin_password or _NOT_IN_PASSWORDS & set(self.admin_password):
            raise BrokerError(
                "the admin password must be non-empty, without quotes, commas, semicolons, "
                "backslashes, spaces, '=' or brackets"
            )

    def __repr__(self) -> str:
        return f"BrokerSecurity(admin_password=***, tls={self.tls!r})"

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
            f"listener.name.{SECURE_PROTOCOL.lower()}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                f'{_JAAS_SCRAM} required username="{ADMIN_USER}" password="{password}";'
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN_USER}",
            "allow.everyone.if.no.acl.found": "false",
            **self.tls.server_properties(),
        }

    def format_arguments(self) -> list[str]:
        """``StorageTool format`` arguments that create ``admin``'s SCRAM credential."""
        credential = f"name={ADMIN_USER},password={self.admin_password}"
        return ["--add-scram", f"{SCRAM_MECHANISM}=[{credential}]"]

    def client_settings(self, bootstrap: str) -> dict[str, Any]:
        """Keyword arguments of :class:`~databus.settings.Settings` for ``admin``."""
        return admin_client_settings(bootstrap, self.admin_password, self.tls.ca_file)


def admin_client_settings(bootstrap: str, password: str, ca_file: Path) -> dict[str, Any]:
    """Keyword arguments of :class:`~databus.settings.Settings` for the super user of a
    secure local broker: SASL_SSL, trusting only the broker's own CA."""
    return {
        "bootstrap_servers": bootstrap,
        "security_protocol": SECURE_PROTOCOL,
        "sasl_mechanism": SCRAM_MECHANISM,
        "sasl_username": ADMIN_USER,
        "sasl_password": password,
        "ssl_cafile": ca_file,
    }


def new_password() -> str:
    """A random password safe in JAAS and SCRAM option syntax (URL-safe base64)."""
    return secrets.token_urlsafe(24)


def load_or_create_password(password_path: Path) -> str:
    """The super user's password, made on first use and then kept (0600)."""
    if password_path.is_file():
        return password_path.read_text(encoding="utf-8").strip()
    password = new_password()
    write_private(password_path, password + "\n")
    return password


def env_file_text(settings: dict[str, Any], *, comment: str) -> str:
    """``export DATABUS_*=...`` lines for a shell, from :class:`Settings` keyword arguments
    (values quoted for the shell only when they need it: a path with a space)."""
    lines = [f"# {comment}"]
    for name, value in settings.items():
        lines.append(f"export DATABUS_{name.upper()}={shlex.quote(str(value))}")
    return "\n".join(lines) + "\n"
