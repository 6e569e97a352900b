"""A local cluster's pure parts: its nodes' configs, ports and shared cluster id."""

from __future__ import annotations

from pathlib import Path

import pytest

from databus.errors import BrokerError
from databus.ops.broker_config import min_insync_replicas, render_server_properties
from databus.ops.cluster import LocalCluster
from tests.unit.test_broker_config import parse_properties


def test_a_single_broker_keeps_one_replica() -> None:
    single = parse_properties(
        render_server_properties(data_dir=Path("/d"), port=9092, controller_port=9093)
    )
    assert single["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert single["offsets.topic.replication.factor"] == "1"
    assert "min.insync.replicas" not in single
    assert "default.replication.factor" not in single


@pytest.mark.parametrize(("replicas", "in_sync"), [(1, 1), (2, 1), (3, 2), (5, 2)])
def test_a_write_needs_two_replicas_from_three_on(replicas: int, in_sync: int) -> None:
    assert min_insync_replicas(replicas) == in_sync


def test_each_node_of_a_cluster_has_its_ports_its_id_and_the_whole_quorum(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster(tmp_path, tmp_path / "cache", 3, 39092, 39093)
    nodes = cluster.nodes()
    assert cluster.bootstrap == "127.0.0.1:39092,127.0.0.1:39094,127.0.0.1:39096"
    assert [(n.port, n.controller_port) for n in nodes] == [
        (39092, 39093),
        (39094, 39095),
        (39096, 39097),
    ]
    assert [n.broker_dir.name for n in nodes] == ["node-1", "node-2", "node-3"]
    assert len({n.node.cluster_id for n in nodes if n.node}) == 1
    assert cluster.nodes()[0].node == nodes[0].node, "the cluster id is kept"
    (node,) = [n.node for n in nodes[1:2] if n.node]
    properties = parse_properties(
        render_server_properties(
            data_dir=Path("/d"),
            port=39094,
            controller_port=39095,
            node_id=node.node_id,
            voters=node.voters,
            replication=node.replication,
        )
    )
    assert properties["node.id"] == "2"
    assert properties["controller.quorum.voters"] == (
        "1@127.0.0.1:39093,2@127.0.0.1:39095,3@127.0.0.1:39097"
    )
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "default.replication.factor",
    ):
        assert properties[key] == "3", key
    assert properties["min.insync.replicas"] == "2"
    assert properties["transaction.state.log.min.isr"] == "2"


def test_overlapping_client_and_controller_ports_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="overlap"):
        LocalCluster(tmp_path, tmp_path, 3, 9092, 9094)


def test_a_cluster_has_two_nodes_or_more(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="at least 2"):
        LocalCluster(tmp_path, tmp_path, 1)
