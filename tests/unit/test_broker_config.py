"""The local broker's pure parts: rendered config, cluster ids, tool and cache checks."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from databus.errors import BrokerError
from databus.ops import kafka_dist
from databus.ops.broker import LocalBroker, new_cluster_id, render_server_properties
from databus.ops.kafka_dist import (
    KAFKA_VERSION,
    POM_ENV_VAR,
    cached_kafka_libs,
    ensure_kafka_libs,
    find_kafka_pom,
)


def parse_properties(text: str) -> dict[str, str]:
    """Enough of the Java properties format for what the renderer writes."""
    pairs = (line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    return {key: value for key, value in pairs}


@pytest.fixture
def properties() -> dict[str, str]:
    return parse_properties(
        render_server_properties(
            data_dir=Path("/srv/kafka/data"), port=29092, controller_port=29093
        )
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("process.roles", "broker,controller", id="combined-kraft-node"),
        pytest.param("node.id", "1", id="node-id"),
        pytest.param("controller.quorum.voters", "1@127.0.0.1:29093", id="static-voter"),
        pytest.param("controller.listener.names", "CONTROLLER", id="controller-listener"),
        pytest.param(
            "listeners",
            "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093",
            id="loopback-listeners",
        ),
        pytest.param("advertised.listeners", "PLAINTEXT://127.0.0.1:29092", id="advertised"),
        pytest.param("inter.broker.listener.name", "PLAINTEXT", id="inter-broker"),
        pytest.param(
            "listener.security.protocol.map",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            id="plaintext-protocol-map",
        ),
        pytest.param("log.dirs", "/srv/kafka/data", id="data-dir"),
        pytest.param("num.partitions", "1", id="one-partition-default"),
        pytest.param("auto.create.topics.enable", "false", id="topics-only-from-topics-apply"),
        pytest.param("offsets.topic.replication.factor", "1", id="offsets-rf"),
        pytest.param("transaction.state.log.replication.factor", "1", id="txn-rf"),
        pytest.param("transaction.state.log.min.isr", "1", id="txn-isr"),
        pytest.param("share.coordinator.state.topic.replication.factor", "1", id="share-rf"),
        pytest.param("share.coordinator.state.topic.min.isr", "1", id="share-isr"),
        pytest.param("group.initial.rebalance.delay.ms", "0", id="no-rebalance-delay"),
    ],
)
def test_server_properties_single_node_kraft(
    properties: dict[str, str], key: str, expected: str
) -> None:
    assert properties[key] == expected


def test_server_properties_has_no_security_settings_yet(properties: dict[str, str]) -> None:
    assert not [key for key in properties if key.startswith(("sasl.", "authorizer."))]


def test_server_properties_escape_backslashes() -> None:
    text = render_server_properties(
        data_dir=Path("C:\\kafka\\data"), port=9092, controller_port=9093
    )

    assert "log.dirs=C:\\\\kafka\\\\data\n" in text


def test_cluster_id_is_a_kafka_uuid() -> None:
    cluster_id = new_cluster_id()

    assert len(cluster_id) == 22
    assert not cluster_id.startswith("-")
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_missing_java_names_docker_before_touching_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    broker = LocalBroker(tmp_path / "state", tmp_path / "cache", 29092, 29093)

    with pytest.raises(BrokerError, match="`java` is not on PATH") as caught:
        broker.start()

    assert "docker compose up kafka" in str(caught.value)
    assert not (tmp_path / "state").exists()


def test_missing_maven_names_docker_when_jars_are_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)

    with pytest.raises(BrokerError, match="`mvn` is not on PATH") as caught:
        ensure_kafka_libs(tmp_path)

    assert "docker compose up kafka" in str(caught.value)


def test_cached_jars_need_no_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / f"kafka-{KAFKA_VERSION}"
    (home / "libs").mkdir(parents=True)
    (home / "libs.complete").write_text(KAFKA_VERSION)
    monkeypatch.setattr(shutil, "which", lambda name: None)

    assert ensure_kafka_libs(tmp_path) == home / "libs"


def test_interrupted_download_is_not_a_cache(tmp_path: Path) -> None:
    (tmp_path / f"kafka-{KAFKA_VERSION}" / "libs").mkdir(parents=True)

    assert cached_kafka_libs(tmp_path) is None


def test_pom_is_found_in_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POM_ENV_VAR, raising=False)

    pom = find_kafka_pom()

    assert pom.parts[-3:] == ("deploy", "kafka", "pom.xml")
    assert pom == Path(kafka_dist.__file__).resolve().parents[3] / "deploy/kafka/pom.xml"


def test_pom_override_that_does_not_exist_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(POM_ENV_VAR, str(tmp_path / "nowhere.xml"))

    with pytest.raises(BrokerError, match=POM_ENV_VAR):
        find_kafka_pom()


def test_client_and_controller_port_must_differ(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="must differ"):
        LocalBroker(tmp_path, tmp_path, 9092, 9092)


def test_status_without_pid_file_is_not_running(tmp_path: Path) -> None:
    status = LocalBroker(tmp_path / "state", tmp_path / "cache", 29092, 29093).status()

    assert not status.running
    assert status.pid is None
    assert status.stale_pid is None
    assert status.bootstrap == "127.0.0.1:29092"
