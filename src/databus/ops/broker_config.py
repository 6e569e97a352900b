"""The local broker's configuration files: ``server.properties`` and its logging.

Pure, so they can be tested without Java.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from databus.ops.broker_security import SECURE_PROTOCOL, BrokerSecurity
from databus.ops.processes import LOOPBACK

#: Console logging only: the broker's stdout is redirected to ``broker.log``.
LOG4J2_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by databus on every start of the local broker. -->
<Configuration status="WARN">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="stdout"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.network.RequestChannel$" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.authorizer.logger" level="WARN"/>
  </Loggers>
</Configuration>
"""


def render_server_properties(
    *,
    data_dir: Path,
    port: int,
    controller_port: int,
    host: str = LOOPBACK,
    node_id: int = 1,
    security: BrokerSecurity | None = None,
    voters: str | None = None,
    replication: int = 1,
) -> str:
    """The ``server.properties`` of a KRaft node that is both broker and controller.

    Alone (``voters`` None, ``replication`` 1), or one node of a local cluster whose
    controller quorum is ``voters`` (``id@host:port,...``) and whose internal and default
    topics get ``replication`` replicas with :func:`min_insync_replicas` of them
    required for a write. Plaintext, or with ``security`` TLS on every listener (no
    plaintext listener is left), SASL/SCRAM for clients, SASL/PLAIN between broker and
    controller, and ACLs enforced by the StandardAuthorizer. Pure so it can be tested
    without Java.
    """
    in_sync = str(min_insync_replicas(replication))
    replicas = str(replication)
    client = SECURE_PROTOCOL if security else "PLAINTEXT"
    controller = SECURE_PROTOCOL if security else "PLAINTEXT"
    properties = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters or f"{node_id}@{host}:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "listeners": f"{client}://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"{client}://{host}:{port}",
        "inter.broker.listener.name": client,
        "listener.security.protocol.map": f"CONTROLLER:{controller},{client}:{client}",
        **(security.server_properties() if security else {}),
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": in_sync,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": in_sync,
        "group.initial.rebalance.delay.ms": "0",
    }
    if replication > 1:
        properties["default.replication.factor"] = replicas
        properties["min.insync.replicas"] = in_sync
    lines = ["# Written by databus on every start of the local broker; edits are lost."]
    lines += [f"{key}={_escape_property(value)}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


#: From this many replicas on, a write needs :data:`QUORUM_IN_SYNC` of them.
QUORUM_REPLICAS = 3
QUORUM_IN_SYNC = 2


def min_insync_replicas(replication: int) -> int:
    """How many replicas must have a write before ``acks=all`` succeeds: 2 of 3 (one
    broker may be down and nothing acknowledged is lost), 1 below 3 replicas (with 2, a
    second required replica would stop every write when one broker is down)."""
    return QUORUM_IN_SYNC if replication >= QUORUM_REPLICAS else 1


def _escape_property(value: str) -> str:
    """Backslashes are escapes in Java properties files (think Windows paths); a PEM
    value's line breaks become ``\\n`` escapes."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka makes it: 16 random bytes, URL-safe base64."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):  # Kafka avoids ids that look like options
            return cluster_id
