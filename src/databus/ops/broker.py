"""A real single-node Apache Kafka broker (KRaft) for development and tests.

The jars come from Maven Central through ``deploy/kafka/pom.xml`` and are cached per
Kafka version; config, data, pid file and log live in ``<state_dir>/broker``. Only the
process named by our pid file, and recognised by its command line, is ever stopped.

Everything in the broker directory is private to the user (0700 directories, 0600
files): it holds resident data and secrets, so the JVM runs with umask 077 and our own
files are written that way.

In secure mode (``databus broker start --secure``) every listener is SASL_SSL with
certificates of a CA the project makes (``<state_dir>/broker/tls/``); clients verify
them and authenticate with SASL/SCRAM, and the StandardAuthorizer enforces ACLs. The
super user ``admin`` has a random password kept in ``<state_dir>/broker/admin.env``. The
controller listener uses TLS and SASL/PLAIN with the same user (SCRAM credentials live
in the metadata log, which the controller must read before it can check them), so no
unauthenticated client is a super user, not even on loopback.

A *demo broker* (``--demo``) is formatted with a demo cluster id
(:func:`databus.sandbox.new_demo_cluster_id`): the only kind of broker where the public
demo key works. It stays one for the life of its data directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databus.errors import BrokerError
from databus.ops.broker_config import LOG4J2_XML, new_cluster_id, render_server_properties
from databus.ops.broker_data import (
    FormattedData,
    formatted_data,
    read_properties,
    refuse_other_kind,
)
from databus.ops.broker_jvm import BrokerFiles, format_storage, launch, wait_until_ready
from databus.ops.broker_security import (
    PLAINTEXT_MODE,
    SECURE_MODE,
    BrokerSecurity,
    admin_client_settings,
    env_file_text,
    load_or_create_password,
)
from databus.ops.kafka_dist import (
    ensure_kafka_libs,
    exclusive_lock,
    require_tool,
    tail,
)
from databus.ops.private_files import make_tree_private, private_dir, write_private
from databus.ops.processes import (
    LOOPBACK,
    command_line,
    free_ports,
    port_accepts,
    port_is_free,
    terminate,
)
from databus.ops.tls import CA_FILE, ensure_broker_tls
from databus.sandbox import is_demo_cluster, new_demo_cluster_id
from databus.settings import Settings

__all__ = [
    "BrokerStatus",
    "LocalBroker",
    "free_ports",
    "new_cluster_id",
    "render_server_properties",
]

logger = logging.getLogger(__name__)

#: The broker listens on loopback only: it is a development broker.
BROKER_HOST = LOOPBACK
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
_KILL_TIMEOUT_S = 10.0
_LOG_TAIL_LINES = 40


#: Where the nodes of a local cluster live, under the state dir.
CLUSTER_DIR = "cluster"


@dataclass(frozen=True)
class ClusterNode:
    """A broker's place in a local cluster of several KRaft nodes."""

    node_id: int
    voters: str
    """The controller quorum, ``id@host:port`` of every node."""
    replication: int
    """Replicas of internal topics and the default for new topics."""
    cluster_id: str


@dataclass(frozen=True)
class BrokerStatus:
    """What the pid file and the process table say about the local broker."""

    running: bool
    """Our broker process is alive."""
    ready: bool
    """Its client port accepts connections."""
    pid: int | None
    """Pid of our running broker."""
    bootstrap: str
    """Bootstrap address of the running broker (or the configured one)."""
    stale_pid: str | None
    """Content of a pid file that does not name our broker."""
    secure: bool = False
    """The running broker requires SASL/SCRAM and enforces ACLs."""
    tls: bool = False
    """The running broker's listeners are TLS (secure mode since TLS came)."""
    demo: bool = False
    """The data directory was formatted as a demo broker."""


class LocalBroker:
    """One broker per state directory: start it, ask about it, stop it."""

    def __init__(
        self,
        state_dir: Path,
        cache_dir: Path,
        port: int = 9092,
        controller_port: int = 9093,
        *,
        secure: bool = False,
        demo: bool = False,
        node: ClusterNode | None = None,
    ) -> None:
        """``node``: this broker is one node of a local cluster (:mod:`databus.ops.cluster`),
        kept in ``<state_dir>/cluster/node-<id>`` instead of ``<state_dir>/broker``."""
        if port == controller_port:
            raise BrokerError(f"client and controller port must differ (both {port})")
        if secure and demo:
            raise BrokerError(
                "a demo broker is a local sandbox: --demo and --secure cannot be combined"
            )
        # Absolute: the config path is how we recognise our process in `ps`.
        self.state_dir = state_dir.expanduser().resolve()
        self.cache_dir = cache_dir.expanduser()
        self.port = port
        self.controller_port = controller_port
        self.node = node
        self.broker_dir = (
            self.state_dir / "broker"
            if node is None
            else self.state_dir / CLUSTER_DIR / f"node-{node.node_id}"
        )
        self.data_dir = self.broker_dir / "data"
        self.config_path = self.broker_dir / "server.properties"
        self.log4j_path = self.broker_dir / "log4j2.xml"
        self.pid_path = self.broker_dir / "broker.pid"
        self.log_path = self.broker_dir / "broker.log"
        self.cluster_id_path = self.broker_dir / "cluster.id"
        self.secure = secure
        self.demo = demo
        self.mode_path = self.broker_dir / "security"
        self.admin_password_path = self.broker_dir / "admin.password"
        self.admin_env_path = self.broker_dir / "admin.env"
        self.tls_dir = self.broker_dir / "tls"
        self.ca_path = self.tls_dir / CA_FILE
        self._files = BrokerFiles(
            self.broker_dir,
            self.data_dir,
            self.config_path,
            self.log4j_path,
            self.log_path,
            self.pid_path,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        state_dir: Path | None = None,
        port: int | None = None,
        controller_port: int | None = None,
        secure: bool = False,
        demo: bool = False,
    ) -> LocalBroker:
        """The broker the settings describe, with per-call overrides (CLI options)."""
        return cls(
            state_dir=state_dir if state_dir is not None else settings.state_dir,
            cache_dir=settings.cache_dir,
            port=port if port is not None else settings.broker_port,
            controller_port=(
                controller_port if controller_port is not None else settings.controller_port
            ),
            secure=secure,
            demo=demo,
        )

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients use for this broker."""
        return f"{BROKER_HOST}:{self.port}"

    def status(self) -> BrokerStatus:
        """Read-only look at the pid file, the process and the client port."""
        raw_pid = self._read_pid_file()
        formatted = self._formatted()
        demo = formatted is not None and formatted.demo
        if raw_pid is None:
            return BrokerStatus(False, False, None, self.bootstrap, None, demo=demo)
        pid = int(raw_pid) if raw_pid.isdigit() else None
        if pid is None or not self._is_our_broker(pid):
            return BrokerStatus(False, False, None, self.bootstrap, raw_pid, demo=demo)
        config = self._running_config()
        port = _advertised_port(config) or self.port
        return BrokerStatus(
            True,
            port_accepts(port),
            pid,
            f"{BROKER_HOST}:{port}",
            None,
            secure="sasl.enabled.mechanisms" in config,
            tls=config.get("advertised.listeners", "").startswith(("SASL_SSL:", "SSL:")),
            demo=demo,
        )

    def admin_settings(self) -> dict[str, Any]:
        """:class:`~databus.settings.Settings` keyword arguments for this broker's super
        user (secure mode: SASL_SSL, trusting the broker's CA), or just its address."""
        if not self.secure:
            return {"bootstrap_servers": self.bootstrap}
        password = load_or_create_password(self.admin_password_path)
        return admin_client_settings(self.bootstrap, password, self.ca_path)

    def refuse_other_kind(self) -> None:
        """A one-line error if the data directory was formatted as another kind of
        broker (plaintext or secure, demo or not) than this one starts."""
        refuse_other_kind(
            self._formatted(), secure=self.secure, demo=self.demo, data_dir=self.data_dir
        )

    def is_running(self) -> bool:
        """Whether the broker this state directory belongs to is alive."""
        return self.status().running

    def start(self, timeout: float = READY_TIMEOUT_S) -> str:
        """Start the broker unless it runs already; return its bootstrap address."""
        pid = self.launch(timeout)
        if pid is not None:
            self.wait_until_started(pid, timeout)
        return self.bootstrap

    def wait_until_started(self, pid: int, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until the broker :meth:`launch` started serves; stop it if it does not."""
        try:
            self._wait_until_ready(pid, timeout)
        except BrokerError:
            terminate(pid, STOP_TIMEOUT_S, kill_timeout=_KILL_TIMEOUT_S, what="the broker")
            self.pid_path.unlink(missing_ok=True)
            raise
        logger.info("broker running (pid %d) on %s", pid, self.bootstrap)

    def launch(self, timeout: float = READY_TIMEOUT_S) -> int | None:
        """Launch the broker's JVM unless it runs already (then wait until it is ready
        and return ``None``); return the pid of the new process, not waiting for it: the
        nodes of a cluster serve only once a majority of them runs."""
        java = require_tool("java")
        private_dir(self.broker_dir)
        with exclusive_lock(self.broker_dir / "start.lock"):
            self.refuse_other_kind()
            current = self.status()
            if current.running and current.pid is not None:
                if current.bootstrap != self.bootstrap:
                    raise BrokerError(
                        f"the broker in {self.state_dir} already runs on "
                        f"{current.bootstrap}; stop it first to change ports"
                    )
                if current.secure != self.secure:
                    raise BrokerError(
                        f"the broker in {self.state_dir} already runs in {_mode(current.secure)} "
                        f"mode; stop it first to start it in {_mode(self.secure)} mode"
                    )
                if current.secure and not current.tls:
                    raise BrokerError(
                        f"the broker in {self.state_dir} runs in secure mode without TLS "
                        "(started by an older databus), so SASL_SSL clients cannot reach it; "
                        f"restart it: databus broker stop --state-dir {self.state_dir}, then "
                        "databus broker start --secure"
                    )
                if not current.ready and self.node is None:
                    self._wait_until_ready(current.pid, timeout)
                logger.info("broker already running (pid %d)", current.pid)
                return None
            if current.stale_pid is not None:
                logger.info("removing stale pid file %s", self.pid_path)
                self.pid_path.unlink(missing_ok=True)
            self._refuse_busy_ports()
            libs = ensure_kafka_libs(self.cache_dir)
            if make_tree_private(self.broker_dir):
                logger.info("made %s private to its owner (0700/0600)", self.broker_dir)
            security = self._security()
            self._write_config(security)
            if self._formatted() is None:
                extra = security.format_arguments() if security is not None else []
                format_storage(self._files, java, libs, self._cluster_id_to_format(), extra)
                write_private(self.mode_path, (SECURE_MODE if security else PLAINTEXT_MODE) + "\n")
            return launch(self._files, java, libs)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop our broker; ``False`` if none ran (a stale pid file is removed)."""
        raw_pid = self._read_pid_file()
        if raw_pid is None:
            return False
        pid = int(raw_pid) if raw_pid.isdigit() else None
        if pid is None or not self._is_our_broker(pid):
            logger.info(
                "removing stale pid file %s (%s is not our broker)",
                self.pid_path,
                raw_pid,
            )
            self.pid_path.unlink(missing_ok=True)
            return False
        terminate(pid, timeout, kill_timeout=_KILL_TIMEOUT_S, what="the broker")
        self.pid_path.unlink(missing_ok=True)
        logger.info("broker stopped (pid %d)", pid)
        return True

    def logtail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The end of ``broker.log``, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no broker log)"
        return tail(text.splitlines(), lines)

    def _read_pid_file(self) -> str | None:
        try:
            return self.pid_path.read_text().strip()
        except FileNotFoundError:
            return None

    def _is_our_broker(self, pid: int) -> bool:
        command = command_line(pid)
        return command is not None and self._files.command_marker() in command

    def _running_config(self) -> dict[str, str]:
        """The config the running broker was started with (rewritten only at a start)."""
        try:
            return read_properties(self.config_path.read_text())
        except FileNotFoundError:
            return {}

    def _formatted(self) -> FormattedData | None:
        return formatted_data(self.data_dir, self.mode_path)

    def _refuse_busy_ports(self) -> None:
        for port in (self.port, self.controller_port):
            if not port_is_free(port):
                raise BrokerError(
                    f"port {port} on {BROKER_HOST} is used by another process (another "
                    "Kafka, perhaps `docker compose up kafka`?); pick free ports with "
                    "--port and --controller-port"
                )

    def _security(self) -> BrokerSecurity | None:
        """The password and the certificates (made on the first secure start)."""
        if not self.secure:
            return None
        had_tls = self.ca_path.is_file()
        security = BrokerSecurity(
            load_or_create_password(self.admin_password_path), ensure_broker_tls(self.tls_dir)
        )
        if not had_tls:
            logger.info("made a CA and a broker certificate in %s", self.tls_dir)
        return security

    def _write_config(self, security: BrokerSecurity | None) -> None:
        private_dir(self.data_dir)
        node = self.node
        config = render_server_properties(
            data_dir=self.data_dir,
            port=self.port,
            controller_port=self.controller_port,
            security=security,
            node_id=1 if node is None else node.node_id,
            voters=None if node is None else node.voters,
            replication=1 if node is None else node.replication,
        )
        write_private(self.config_path, config)
        if security is not None:
            write_private(
                self.admin_env_path,
                env_file_text(
                    security.client_settings(self.bootstrap),
                    comment="The local broker's super user; `. admin.env` before databus commands.",
                ),
            )
        write_private(self.log4j_path, LOG4J2_XML)

    def _cluster_id_to_format(self) -> str:
        """The kept id if it is of the wanted kind (a demo id for a demo broker); a
        cluster's node takes the cluster's."""
        if self.node is not None:
            return self.node.cluster_id
        try:
            kept: str | None = self.cluster_id_path.read_text().strip()
        except FileNotFoundError:
            kept = None
        if kept and is_demo_cluster(kept) == self.demo:
            return kept
        cluster_id = new_demo_cluster_id() if self.demo else new_cluster_id()
        write_private(self.cluster_id_path, cluster_id + "\n")
        return cluster_id

    def _wait_until_ready(self, pid: int, timeout: float) -> None:
        wait_until_ready(
            pid,
            self.port,
            timeout,
            bootstrap=self.bootstrap,
            log_tail=lambda: f"end of {self.log_path}:\n{self.logtail()}",
        )


def _mode(secure: bool) -> str:
    return "secure (SASL/SCRAM)" if secure else "plaintext"


def _advertised_port(config: dict[str, str]) -> int | None:
    """The client port of a config's (single) advertised listener."""
    port = config.get("advertised.listeners", "").rpartition(":")[2]
    return int(port) if port.isdigit() else None
