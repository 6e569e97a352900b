"""The Kafka credentials of a Faust app, from the same settings every other client uses.

aiokafka clients take :meth:`Settings.kafka_client_options`; Faust builds its own
clients from ``broker_credentials``, so a worker on a SASL/SCRAM cluster needs both.
"""

from __future__ import annotations

from typing import Any

from faust.auth import SASLCredentials, SSLCredentials

from databus.settings import Settings


def faust_broker_settings(settings: Settings) -> dict[str, Any]:
    """The Faust app settings that carry the connection's credentials (none on PLAINTEXT)."""
    options = settings.kafka_client_options()
    if settings.uses_sasl:
        mechanism, username, password = settings.sasl_credentials()
        return {
            "broker_credentials": SASLCredentials(
                username=username,
                password=password,
                mechanism=mechanism,
                ssl_context=options.get("ssl_context"),
            )
        }
    if settings.security_protocol == "SSL":
        return {"broker_credentials": SSLCredentials(options["ssl_context"])}
    return {}
