"""One frozen settings object, read from ``DATABUS_*`` variables and an optional TOML file.

Precedence (highest first): explicit keyword arguments, environment variables, the
file named by ``DATABUS_CONFIG`` (default ``./databus.toml`` when present), defaults.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from databus.errors import ConfigurationError
from databus.identity import MIN_KEY_BYTES

SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
#: The mechanism of the local secure broker (``databus broker start --secure``).
DEFAULT_SASL_MECHANISM: SaslMechanism = "SCRAM-SHA-512"

#: The fixed key used only by ``databus demo`` and ``make demo``. Pseudonyms made with
#: it are public knowledge: never use it for real data. A publisher uses it only
#: against a demo broker (:mod:`databus.sandbox`), whatever the settings say.
DEMO_PSEUDONYM_KEY = "databus-DEMO-ONLY-pseudonym-key-not-for-real-data"


def _config_file() -> Path:
    return Path(os.environ.get("DATABUS_CONFIG", "databus.toml"))


class Settings(BaseSettings):
    """Everything a databus process needs to know about its surroundings."""

    model_config = SettingsConfigDict(env_prefix="DATABUS_", frozen=True, extra="ignore")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="HMAC key that turns citizen IDs into person_ref; at least 32 bytes.",
    )
    demo: bool = Field(
        default=False,
        description="Ask for the public demo pseudonym key instead of pseudonym_key; a "
        "publisher then runs only against a demo broker.",
    )
    client_id: str = Field(default="databus", description="Kafka client id prefix.")
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        default="PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: SaslMechanism | None = Field(
        default=None,
        description="SASL mechanism; SCRAM-SHA-512 (the local secure broker's) when a SASL "
        "protocol is chosen without one.",
    )
    sasl_username: str | None = Field(default=None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    ssl_cafile: Path | None = Field(
        default=None,
        description="CA bundle that signed the brokers' certificates (SSL, SASL_SSL); "
        "default: the system's.",
    )
    grants: Path | None = Field(
        default=None,
        description="Grant file, or directory of *.yaml grant files; default: the "
        "checkout's deploy/grants.",
    )
    state_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_state_dir("databus")),
        description="Where the local broker keeps its data, pid file and log.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_cache_dir("databus")),
        description="Where the Kafka jars fetched through Maven are cached.",
    )
    broker_port: int = Field(default=9092, description="Client port of the local broker.")
    controller_port: int = Field(
        default=9093, description="KRaft controller port of the local broker."
    )
    partitions: int = Field(
        default=12, ge=1, description="Partition count shared by every person-keyed topic."
    )
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Replicas of every topic; default: the cluster's own (3 on 3 brokers or "
        "more, else one per broker), with min.insync.replicas=2 from 3 replicas.",
    )
    policy_file: Path | None = Field(
        default=None, description="Decision policy TOML; default: the packaged DOMAIN.md values."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_config_file()),
        )

    def pseudonym_key_bytes(self) -> bytes:
        """The HMAC key, or the demo key when ``demo`` asks for it; an error when both
        or neither are set (so the choice is never silent) or the key is too short.

        Asking is not enough to use the demo key: the publisher also checks that its
        broker is a demo broker."""
        key = self.pseudonym_key.get_secret_value() if self.pseudonym_key is not None else ""
        if key and self.demo:
            raise ConfigurationError(
                "set either DATABUS_PSEUDONYM_KEY or DATABUS_DEMO, not both: the demo key "
                "and a real key make different pseudonyms for the same person"
            )
        if key:
            size = len(key.encode())
            if size < MIN_KEY_BYTES:
                raise ConfigurationError(
                    f"DATABUS_PSEUDONYM_KEY is {size} bytes; a pseudonym key must be at least "
                    f"{MIN_KEY_BYTES} bytes (for example `openssl rand -base64 32`)"
                )
            return key.encode()
        if self.demo:
            return DEMO_PSEUDONYM_KEY.encode()
        raise ConfigurationError(
            "no pseudonym key: set DATABUS_PSEUDONYM_KEY (or pseudonym_key in the config "
            "file); only the demo (DATABUS_DEMO=1, against a demo broker) may run with the "
            "public demo key"
        )

    @property
    def uses_sasl(self) -> bool:
        """Whether clients authenticate with SASL (user name and password)."""
        return self.security_protocol.startswith("SASL_")

    def sasl_credentials(self) -> tuple[SaslMechanism, str, str]:
        """Mechanism, user name and password; an error naming what is missing."""
        missing = [
            name
            for name, value in (
                ("DATABUS_SASL_USERNAME", self.sasl_username),
                ("DATABUS_SASL_PASSWORD", self.sasl_password),
            )
            if not value
        ]
        if missing or self.sasl_username is None or self.sasl_password is None:
            raise ConfigurationError(
                f"DATABUS_SECURITY_PROTOCOL={self.security_protocol} needs "
                f"{' and '.join(missing)} (the credentials `databus acl apply` wrote)"
            )
        mechanism = self.sasl_mechanism or DEFAULT_SASL_MECHANISM
        return mechanism, self.sasl_username, self.sasl_password.get_secret_value()

    def kafka_client_options(self) -> dict[str, Any]:
        """Connection options shared by every aiokafka client we create."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.uses_sasl:
            mechanism, username, password = self.sasl_credentials()
            options["sasl_mechanism"] = mechanism
            options["sasl_plain_username"] = username
            options["sasl_plain_password"] = password
        if self.security_protocol.endswith("SSL"):
            cafile = str(self.ssl_cafile) if self.ssl_cafile else None
            options["ssl_context"] = ssl.create_default_context(cafile=cafile)
        return options

    def principal(self) -> str:
        """Who the broker will think we are: the SASL user, or ANONYMOUS."""
        return self.sasl_username if self.uses_sasl and self.sasl_username else "ANONYMOUS"

    def safe_dump(self) -> dict[str, Any]:
        """The settings as a dict that is safe to log: secrets stay masked."""
        return self.model_dump(mode="json")
