"""The local broker against a real JVM: start, idempotent start, clients, stop; private
files; demo brokers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from click.testing import CliRunner

from databus.cli.main import main
from databus.errors import BrokerError
from databus.ops.broker import LocalBroker, free_ports
from databus.ops.private_files import loose_modes
from databus.sandbox import DEMO_CLUSTER_PREFIX, on_demo_broker
from databus.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def create_topic(bootstrap: str, topic: str) -> set[str]:
    """Create ``topic`` and return the topics the broker then lists (waiting up to 10 s
    for the new topic to reach the broker's metadata cache, which lags the controller)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            listed = set(await admin.list_topics())
            if topic in listed or asyncio.get_running_loop().time() > deadline:
                return listed
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def round_trip(bootstrap: str, topic: str, value: bytes) -> bytes:
    """Produce one message and read it back with a fresh consumer group (committed, so
    the broker writes ``__consumer_offsets`` too)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"key")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4()}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=60)
        await consumer.commit()
    finally:
        await consumer.stop()
    return bytes(message.value)


@pytest.fixture
def own_broker(tmp_path: Path, broker_settings: Settings) -> Iterator[LocalBroker]:
    """A broker of the test's own, stopped afterwards even if the test fails."""
    port, controller_port = free_ports(2)
    broker = LocalBroker(tmp_path / "state", broker_settings.cache_dir, port, controller_port)
    yield broker
    broker.stop()


def test_start_is_idempotent_serves_clients_and_stops(own_broker: LocalBroker) -> None:
    assert not own_broker.is_running()

    bootstrap = own_broker.start()

    assert bootstrap == f"127.0.0.1:{own_broker.port}"
    first = own_broker.status()
    assert first.running
    assert first.ready
    assert first.pid is not None
    # A second handle on the same state directory, as a second CLI call would make.
    again = LocalBroker(
        own_broker.state_dir, own_broker.cache_dir, own_broker.port, own_broker.controller_port
    )
    assert again.start() == bootstrap
    assert again.status().pid == first.pid

    topic = f"test-broker-{uuid.uuid4()}"
    assert topic in asyncio.run(create_topic(bootstrap, topic))
    assert asyncio.run(round_trip(bootstrap, topic, b"hello")) == b"hello"

    assert own_broker.stop() is True
    assert not own_broker.status().running
    assert not own_broker.pid_path.exists()
    assert own_broker.stop() is False


def test_restart_keeps_data(own_broker: LocalBroker) -> None:
    bootstrap = own_broker.start()
    topic = f"test-restart-{uuid.uuid4()}"
    asyncio.run(create_topic(bootstrap, topic))
    first_pid = own_broker.status().pid
    own_broker.stop()

    assert own_broker.start() == bootstrap

    assert own_broker.status().pid != first_pid
    assert (own_broker.broker_dir / "broker.log.1").is_file()
    assert asyncio.run(round_trip(bootstrap, topic, b"after restart")) == b"after restart"


def test_stop_leaves_a_process_it_did_not_start_alone(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "state", tmp_path / "cache", *free_ports(2))
    sleep = shutil.which("sleep")
    assert sleep is not None
    stranger = subprocess.Popen([sleep, "120"])
    try:
        broker.broker_dir.mkdir(parents=True)
        broker.pid_path.write_text(f"{stranger.pid}\n")

        status = broker.status()
        stopped = broker.stop()

        assert not status.running
        assert status.stale_pid == str(stranger.pid)
        assert stopped is False
        assert stranger.poll() is None
        assert not broker.pid_path.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_cli_start_status_stop(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    state = ["--state-dir", str(tmp_path / "state")]
    runner = CliRunner()
    ports = ["--port", str(port), "--controller-port", str(controller_port)]
    try:
        started = runner.invoke(main, ["broker", "start", *ports, *state])
        assert started.exit_code == 0, started.output
        assert started.stdout.strip() == f"127.0.0.1:{port}"

        running = runner.invoke(main, ["broker", "status", *state])
        assert running.exit_code == 0, running.output
        assert f"bootstrap 127.0.0.1:{port}" in running.stdout
    finally:
        stopped = runner.invoke(main, ["broker", "stop", *state])
    assert stopped.exit_code == 0, stopped.output
    assert "stopped" in stopped.stdout

    after = runner.invoke(main, ["broker", "status", *state])
    assert after.exit_code == 3
    assert "not running" in after.stdout


def test_cli_reports_a_stale_pid_file(tmp_path: Path) -> None:
    broker_dir = tmp_path / "state" / "broker"
    broker_dir.mkdir(parents=True)
    (broker_dir / "broker.pid").write_text("999999999\n")
    state = ["--state-dir", str(tmp_path / "state")]

    status = CliRunner().invoke(main, ["broker", "status", *state])
    stop = CliRunner().invoke(main, ["broker", "stop", *state])

    assert status.exit_code == 3
    assert "stale pid file" in status.stdout
    assert stop.exit_code == 0
    assert "removed stale pid file" in stop.stdout
    assert not (broker_dir / "broker.pid").exists()


def test_session_broker_serves_clients(kafka_bootstrap: str) -> None:
    topic = f"test-session-{uuid.uuid4()}"
    asyncio.run(create_topic(kafka_bootstrap, topic))
    assert asyncio.run(round_trip(kafka_bootstrap, topic, b"session")) == b"session"


def _umask(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return line.split()[1]
    raise AssertionError(f"no Umask line for pid {pid}")


def test_everything_in_the_broker_directory_is_private(own_broker: LocalBroker) -> None:
    """Topic segments hold resident data: nobody but the user may read them."""
    bootstrap = own_broker.start()
    pid = own_broker.status().pid
    assert pid is not None
    assert _umask(pid) == "0077"
    topic = f"test-modes-{uuid.uuid4()}"
    asyncio.run(create_topic(bootstrap, topic))
    assert asyncio.run(round_trip(bootstrap, topic, b"resident data")) == b"resident data"
    assert loose_modes(own_broker.broker_dir) == []

    own_broker.stop()  # a clean shutdown writes checkpoints and snapshots

    written = {p.name for p in own_broker.data_dir.rglob("*")}
    assert {f"{topic}-0", "__consumer_offsets-0", "meta.properties"} <= written
    assert loose_modes(own_broker.broker_dir) == []
    assert own_broker.broker_dir.stat().st_mode & 0o777 == 0o700


def test_a_demo_broker_stays_one_and_says_so(tmp_path: Path, broker_settings: Settings) -> None:
    port, controller_port = free_ports(2)
    state = ["--state-dir", str(tmp_path / "state")]
    ports = ["--port", str(port), "--controller-port", str(controller_port)]
    runner = CliRunner()
    plain = LocalBroker(tmp_path / "state", broker_settings.cache_dir, port, controller_port)
    try:
        started = runner.invoke(main, ["broker", "start", "--demo", *ports, *state])
        assert started.exit_code == 0, started.output
        bootstrap = started.stdout.strip()
        assert asyncio.run(on_demo_broker(Settings(bootstrap_servers=bootstrap)))
        assert plain.cluster_id_path.read_text().startswith(DEMO_CLUSTER_PREFIX)

        status = runner.invoke(main, ["broker", "status", *state])
        assert "demo, plaintext" in status.stdout
        assert runner.invoke(main, ["broker", "stop", *state]).exit_code == 0

        with pytest.raises(BrokerError, match="is a demo broker"):
            plain.start()
        refused = runner.invoke(main, ["broker", "start", *ports, *state])
        assert refused.exit_code == 2
        assert refused.stderr.strip().count("\n") == 0
        assert "is a demo broker (demo cluster id); start it with --demo" in refused.stderr
        assert not plain.is_running()
    finally:
        plain.stop()


def test_a_normal_broker_is_not_a_demo_broker(kafka_bootstrap: str) -> None:
    assert not asyncio.run(on_demo_broker(Settings(bootstrap_servers=kafka_bootstrap)))


def test_demo_with_secure_is_refused_in_one_line(tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path / "state")]

    refused = CliRunner().invoke(main, ["broker", "start", "--demo", "--secure", *state])

    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "error: a demo broker is a local sandbox: --demo and --secure cannot be combined"
    )
    assert not (tmp_path / "state").exists()
