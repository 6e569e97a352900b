"""The local broker's pure parts: rendered config, cluster ids, data-dir kinds, tool and
cache checks."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from databus.errors import BrokerError
from databus.ops import kafka_dist
from databus.ops.broker import LocalBroker, new_cluster_id, render_server_properties
from databus.ops.broker_data import FormattedData, formatted_data, refuse_other_kind
from databus.ops.broker_security import BrokerSecurity
from databus.ops.kafka_dist import (
    KAFKA_VERSION,
    POM_ENV_VAR,
    cached_kafka_libs,
    ensure_kafka_libs,
    find_kafka_pom,
)
from databus.ops.tls import BrokerTls
from databus.sandbox import is_demo_cluster, new_demo_cluster_id


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


KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n"
CHAIN_PEM = "-----BEGIN CERTIFICATE-----\nMIIBvDCC\n-----END CERTIFICATE-----\n"
TLS = BrokerTls(Path("/srv/kafka/tls/ca.pem"), KEY_PEM, CHAIN_PEM)


@pytest.fixture
def secure_text() -> str:
    return render_server_properties(
        data_dir=Path("/srv/kafka/data"),
        port=29092,
        controller_port=29093,
        security=BrokerSecurity("s3cret-Pass_word", TLS),
    )


@pytest.fixture
def secure_properties(secure_text: str) -> dict[str, str]:
    return parse_properties(secure_text)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(
            "listeners",
            "SASL_SSL://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093",
            id="tls-listeners",
        ),
        pytest.param("advertised.listeners", "SASL_SSL://127.0.0.1:29092", id="advertised"),
        pytest.param("inter.broker.listener.name", "SASL_SSL", id="inter-broker"),
        pytest.param(
            "listener.security.protocol.map",
            "CONTROLLER:SASL_SSL,SASL_SSL:SASL_SSL",
            id="no-plaintext-listener-not-even-the-controller",
        ),
        pytest.param("ssl.keystore.type", "PEM", id="pem-key-store"),
        pytest.param("ssl.truststore.type", "PEM", id="pem-trust-store"),
        pytest.param("ssl.truststore.location", "/srv/kafka/tls/ca.pem", id="trusts-our-ca"),
        pytest.param(
            "ssl.endpoint.identification.algorithm", "https", id="controller-checks-host-name"
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


def test_secure_server_properties_carry_the_pem_key_and_chain_as_escaped_lines(
    secure_text: str, secure_properties: dict[str, str]
) -> None:
    # Java reads ``\n`` in a properties value as a line break: the PEM survives intact.
    assert "ssl.keystore.key=-----BEGIN PRIVATE KEY-----\\nMIGHAgEA\\n" in secure_text
    unescaped = {k: v.replace("\\n", "\n") for k, v in secure_properties.items()}
    assert unescaped["ssl.keystore.key"] == KEY_PEM
    assert unescaped["ssl.keystore.certificate.chain"] == CHAIN_PEM
    assert "ssl.key.password" not in secure_properties


def test_secure_server_properties_log_in_as_admin(secure_properties: dict[str, str]) -> None:
    scram = secure_properties["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    plain = secure_properties["listener.name.controller.plain.sasl.jaas.config"]
    assert 'username="admin" password="s3cret-Pass_word";' in scram
    assert 'user_admin="s3cret-Pass_word";' in plain
    assert "ANONYMOUS" not in str(secure_properties)


@pytest.mark.parametrize("password", ["", "with,comma", 'with"quote', "with space", "a=b"])
def test_admin_passwords_that_break_jaas_or_scram_syntax_are_refused(password: str) -> None:
    with pytest.raises(BrokerError, match="admin password"):
        BrokerSecurity(password, TLS)


def test_admin_password_and_broker_key_are_hidden_from_repr() -> None:
    shown = repr(BrokerSecurity("s3cret", TLS))

    assert "s3cret" not in shown
    assert "MIGHAgEA" not in shown


def test_secure_broker_keeps_its_password_private(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "state", tmp_path / "cache", 29092, 29093, secure=True)

    first = broker.admin_settings()
    again = broker.admin_settings()

    assert first == again
    assert first["sasl_username"] == "admin"
    assert broker.admin_password_path.stat().st_mode & 0o777 == 0o600


def test_secure_broker_clients_speak_tls_and_trust_only_its_ca(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "state", tmp_path / "cache", 29092, 29093, secure=True)

    settings = broker.admin_settings()

    assert settings["security_protocol"] == "SASL_SSL"
    assert settings["ssl_cafile"] == broker.state_dir / "broker" / "tls" / "ca.pem"


# --- what a data directory was formatted as -------------------------------------------


def formatted_as(broker: LocalBroker, cluster_id: str, mode: str | None = None) -> None:
    """Leave ``broker``'s data dir as ``StorageTool format`` (and our mode file) would."""
    broker.data_dir.mkdir(parents=True)
    (broker.data_dir / "meta.properties").write_text(
        f"#\n#Thu Jan 01 00:00:00 UTC 2026\nnode.id=1\nversion=1\ncluster.id={cluster_id}\n"
    )
    if mode is not None:
        broker.mode_path.write_text(mode + "\n")


def local(tmp_path: Path, **kinds: bool) -> LocalBroker:
    return LocalBroker(tmp_path / "state", tmp_path / "cache", 29092, 29093, **kinds)


@pytest.mark.parametrize(
    ("formatted", "mode", "kinds", "message"),
    [
        pytest.param(
            "plain", "plaintext", {"secure": True},
            "created in plaintext mode; start it without --secure", id="plaintext-as-secure",
        ),
        pytest.param(
            "plain", "sasl-scram", {}, "created in sasl-scram mode; start it with --secure",
            id="secure-as-plaintext",
        ),
        pytest.param(
            "plain", None, {"secure": True}, "created in plaintext mode",
            id="formatted-before-secure-mode-existed",
        ),
        pytest.param(
            "demo", "plaintext", {}, "is a demo broker (demo cluster id); start it with --demo",
            id="demo-without-demo",
        ),
        pytest.param(
            "plain", "plaintext", {"demo": True}, "is not a demo broker", id="plain-as-demo",
        ),
    ],
)  # fmt: skip
def test_data_formatted_as_one_kind_is_not_started_as_another(
    tmp_path: Path, formatted: str, mode: str | None, kinds: dict[str, bool], message: str
) -> None:
    broker = local(tmp_path, **kinds)
    formatted_as(broker, new_demo_cluster_id() if formatted == "demo" else new_cluster_id(), mode)
    assert shutil.which("java"), "start() looks for java first (no JVM is started here)"

    with pytest.raises(BrokerError, match=re.escape(message)) as refused:
        broker.start()

    assert "\n" not in str(refused.value)
    assert not broker.config_path.exists()  # refused before writing or launching anything


@pytest.mark.parametrize(
    ("formatted", "mode", "kinds"),
    [
        pytest.param("plain", "plaintext", {}, id="plaintext"),
        pytest.param("plain", "sasl-scram", {"secure": True}, id="secure"),
        pytest.param("demo", "plaintext", {"demo": True}, id="demo"),
    ],
)
def test_data_of_the_same_kind_is_accepted(
    tmp_path: Path, formatted: str, mode: str, kinds: dict[str, bool]
) -> None:
    broker = local(tmp_path, **kinds)
    cluster_id = new_demo_cluster_id() if formatted == "demo" else new_cluster_id()
    formatted_as(broker, cluster_id, mode)

    found = formatted_data(broker.data_dir, broker.mode_path)

    assert found == FormattedData(cluster_id, mode)
    refuse_other_kind(found, data_dir=broker.data_dir, **{"secure": False, "demo": False} | kinds)
    assert broker.status().demo is (formatted == "demo")


def test_demo_and_secure_cannot_be_combined(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="a demo broker is a local sandbox"):
        local(tmp_path, secure=True, demo=True)


def test_plain_cluster_ids_are_never_demo_ids() -> None:
    assert not any(is_demo_cluster(new_cluster_id()) for _ in range(2000))
    assert is_demo_cluster(new_demo_cluster_id())


def test_a_running_secure_broker_without_tls_gets_a_restart_message(tmp_path: Path) -> None:
    """A broker an older databus started in secure mode (SASL_PLAINTEXT listeners) would
    leave SASL_SSL clients waiting on a protocol it does not speak: say so instead."""
    broker = local(tmp_path, secure=True)
    formatted_as(broker, new_cluster_id(), "sasl-scram")
    broker.config_path.write_text(
        "advertised.listeners=SASL_PLAINTEXT://127.0.0.1:29092\n"
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
    )
    # A process that looks like our broker in `ps` (the way stop() recognises it).
    older = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            "kafka.Kafka",
            str(broker.config_path),
        ]
    )
    try:
        broker.pid_path.write_text(f"{older.pid}\n")
        status = broker.status()
        assert (status.running, status.secure, status.tls) == (True, True, False)

        with pytest.raises(BrokerError, match="runs in secure mode without TLS") as refused:
            broker.start()

        assert "databus broker stop --state-dir" in str(refused.value)
        assert "\n" not in str(refused.value)
        assert older.poll() is None  # refused, not stopped behind the user's back
    finally:
        older.kill()
        older.wait()
