"""A local Apache Kafka cluster of several KRaft nodes, from the same jars as the broker.

``databus broker start --nodes 3`` runs three JVMs on loopback, each broker and
controller at once (``process.roles=broker,controller``), as a production KRaft cluster
of three combined nodes would: the controllers form a quorum of three (one may be down),
internal topics have three replicas, and topics get three replicas with
``min.insync.replicas=2``, so a write acknowledged with ``acks=all`` (every databus
producer) is on two brokers before the producer hears of it, and one broker can fail
without losing it or stopping writes.

Node *i* keeps its data, config, pid file and log in ``<state_dir>/cluster/node-<i>``
and listens on ``port + 2(i-1)`` (clients) and ``controller_port + 2(i-1)``
(controller): 9092/9093, 9094/9095, 9096/9097 by default. All nodes are formatted with
one cluster id, kept in ``<state_dir>/cluster/cluster.id``. The nodes are launched
together and the cluster is ready when every node's client port accepts: a node alone
cannot serve, it needs a majority of the quorum to elect a controller.

Secure mode (TLS, SCRAM, ACLs) is for the single broker only, for now.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from databus.errors import BrokerError
from databus.ops.broker import (
    BROKER_HOST,
    CLUSTER_DIR,
    READY_TIMEOUT_S,
    BrokerStatus,
    ClusterNode,
    LocalBroker,
)
from databus.ops.broker_config import new_cluster_id
from databus.ops.private_files import private_dir, write_private
from databus.sandbox import is_demo_cluster, new_demo_cluster_id

logger = logging.getLogger(__name__)

#: Replicas of every topic on a local cluster (fewer if it has fewer nodes).
CLUSTER_REPLICATION = 3
MIN_NODES = 2
#: The port step between two nodes (each has a client and a controller port).
PORT_STEP = 2


@dataclass(frozen=True)
class ClusterStatus:
    """What each node's pid file and process say."""

    nodes: list[BrokerStatus]

    @property
    def running(self) -> list[BrokerStatus]:
        return [node for node in self.nodes if node.running]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)


class LocalCluster:
    """``nodes`` local brokers forming one KRaft cluster: start, ask, stop."""

    def __init__(
        self,
        state_dir: Path,
        cache_dir: Path,
        nodes: int = 3,
        port: int = 9092,
        controller_port: int = 9093,
        *,
        demo: bool = False,
    ) -> None:
        if nodes < MIN_NODES:
            raise BrokerError(f"a cluster has at least 2 nodes, not {nodes}")
        ports = {port + PORT_STEP * i for i in range(nodes)}
        controllers = {controller_port + PORT_STEP * i for i in range(nodes)}
        if ports & controllers:
            raise BrokerError(
                f"client ports from {port} and controller ports from {controller_port} "
                f"overlap (each node takes the next port {PORT_STEP} up); pick others"
            )
        self.state_dir = state_dir.expanduser().resolve()
        self.cache_dir = cache_dir
        self.demo = demo
        self.cluster_dir = self.state_dir / CLUSTER_DIR
        self.cluster_id_path = self.cluster_dir / "cluster.id"
        self.replication = min(CLUSTER_REPLICATION, nodes)
        self._count = nodes
        self._port = port
        self._controller_port = controller_port

    def nodes(self) -> list[LocalBroker]:
        """The cluster's brokers, node 1 first."""
        voters = ",".join(
            f"{i + 1}@{BROKER_HOST}:{self._controller_port + PORT_STEP * i}"
            for i in range(self._count)
        )
        cluster_id = self._cluster_id()
        return [
            LocalBroker(
                self.state_dir,
                self.cache_dir,
                self._port + PORT_STEP * i,
                self._controller_port + PORT_STEP * i,
                demo=self.demo,
                node=ClusterNode(i + 1, voters, self.replication, cluster_id),
            )
            for i in range(self._count)
        ]

    @property
    def bootstrap(self) -> str:
        """Every node's client address: a client that finds one down asks the next."""
        return ",".join(f"{BROKER_HOST}:{self._port + PORT_STEP * i}" for i in range(self._count))

    def start(self, timeout: float = READY_TIMEOUT_S) -> str:
        """Start every node not running yet; return the bootstrap addresses once all serve."""
        nodes = self.nodes()
        for node in nodes:
            node.refuse_other_kind()
        launched: list[tuple[LocalBroker, int]] = []
        try:
            for node in nodes:
                pid = node.launch(timeout)
                if pid is not None:
                    launched.append((node, pid))
            for node, pid in launched:
                node.wait_until_started(pid, timeout)
        except BrokerError:
            for node, _ in launched:
                node.stop()
            raise
        logger.info("cluster of %d nodes running on %s", len(nodes), self.bootstrap)
        return self.bootstrap

    def stop(self) -> int:
        """Stop the nodes that run, all at once; returns how many did.

        One by one, the last nodes would wait for a controller quorum that is gone
        before they shut down, and be killed after the stop timeout."""
        nodes = self.nodes()
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            return sum(pool.map(LocalBroker.stop, nodes))

    def status(self) -> ClusterStatus:
        return ClusterStatus([node.status() for node in self.nodes()])

    def _cluster_id(self) -> str:
        """One id for every node, kept across starts (a demo id for a demo cluster)."""
        try:
            kept: str | None = self.cluster_id_path.read_text().strip()
        except FileNotFoundError:
            kept = None
        if kept and is_demo_cluster(kept) == self.demo:
            return kept
        private_dir(self.cluster_dir)
        cluster_id = new_demo_cluster_id() if self.demo else new_cluster_id()
        write_private(self.cluster_id_path, cluster_id + "\n")
        return cluster_id


def cluster_nodes_on_disk(state_dir: Path) -> int:
    """How many nodes a cluster formatted under ``state_dir`` has (0: none)."""
    directory = state_dir.expanduser().resolve() / CLUSTER_DIR
    if not directory.is_dir():
        return 0
    return sum(1 for path in directory.iterdir() if path.name.startswith("node-"))
