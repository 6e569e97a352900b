"""The local broker's pure parts: rendered config, cluster ids, tool and cache checks."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from databus.errors import BrokerError
from databus.ops import kafka_dist
from databus.ops.broker import LocalBroker, new_cluster_id, render_server_properties
from databus.ops.broker_security import BrokerSecurity
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


@pytest.fixture
def secure_properties() -> dict[str, str]:
    return parse_properties(
        render_server_properties(
            data_dir=Path("/srv/kafka/data"),
            port=29092,
            controller_port=29093,
            security=BrokerSecurity("s3cret-Pass_word"),
        )
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(
            "listeners",
            "SASL_PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093",
            id="sasl-listeners",
        ),
        pytest.param("advertised.listeners", "SASL_PLAINTEXT://127.0.0.1:29092", id="advertised"),
        pytest.param("inter.broker.listener.name", "SASL_PLAINTEXT", id="inter-broker"),
        pytest.param(
            "listener.security.protocol.map",
            "CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            id="no-plaintext-listener",
        ),
        pytest.param("sasl.enabled.mechanisms", "SCRAM-SHA-512", id="scram-for-clients"),
        pytest.param("sasl.mechanism.controller.protocol", "PLAIN", id="plain-to-controller"),
        pytest.param(
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            id="kraft-authorizer",
        ),
        pytest.param("super.users", "User:admin", id="only-admin-is-super"),
        pytest.param("allow.everyone.if.no.acl.found", "false", id="deny-by-default"),
    ],
)
def test_secure_server_properties(
    secure_properties: dict[str, str], key: str, expected: str
) -> None:
    assert secure_properties[key] == expected


def test_secure_server_properties_log_in_as_admin(secure_properties: dict[str, str]) -> None:
    scram = secure_properties["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    plain = secure_properties["listener.name.controller.plain.sasl.jaas.config"]
    assert 'username="admin" password="s3cret-Pass_word";' in scram
    assert 'user_admin="s3cret-Pass_word";' in plain
    assert "ANONYMOUS" not in str(secure_properties)


@pytest.mark.parametrize("password", ["", "with,comma", 'with"quote', "with space", "a=b"])
def test_admin_passwords_that_break_jaas_or_scram_syntax_are_refused(password: str) -> None:
    with pytest.raises(BrokerError, match="admin password"):
        BrokerSecurity(password)


def test_admin_password_is_hidden_from_repr() -> None:
    assert "s3cret" not in repr(BrokerSecurity("s3cret"))


def test_secure_broker_keeps_its_password_private(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "state", tmp_path / "cache", 29092, 29093, secure=True)

    first = broker.admin_settings()
    again = broker.admin_settings()

    assert first == again
    assert first["sasl_username"] == "admin"
    assert first["security_protocol"] == "SASL_PLAINTEXT"
    assert broker.admin_password_path.stat().st_mode & 0o777 == 0o600


def test_data_formatted_in_one_mode_is_not_started_in_the_other(tmp_path: Path) -> None:
    plain = LocalBroker(tmp_path / "state", tmp_path / "cache", 29092, 29093)
    plain.data_dir.mkdir(parents=True)
    (plain.data_dir / "meta.properties").write_text("formatted\n")
    secure = LocalBroker(tmp_path / "state", tmp_path / "cache", 29092, 29093, secure=True)

    with pytest.raises(BrokerError, match="created in plaintext mode; start it without --secure"):
        secure._refuse_other_mode()
    plain._refuse_other_mode()
