"""Running decision workers as real processes against a real broker, for tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from databus.ops.broker import LocalBroker, free_ports
from databus.ops.topics import apply_topics
from databus.settings import Settings
from databus.streams.names import APP_ID

TEST_KEY = "decision-test-key-at-least-32-bytes-long"


@contextmanager
def fresh_bus(tmp_path: Path, cache_dir: Path) -> Iterator[Settings]:
    """A broker of its own with the catalog's topics: nothing from other tests leaks in."""
    port, controller = free_ports(2)
    broker = LocalBroker(
        tmp_path / "broker-state", cache_dir, port=port, controller_port=controller
    )
    bootstrap = broker.start()
    try:
        settings = Settings(
            bootstrap_servers=bootstrap,
            pseudonym_key=TEST_KEY,  # type: ignore[arg-type]
            demo=False,
            partitions=4,
        )
        asyncio.run(apply_topics(settings))
        yield settings
    finally:
        broker.stop()


def start_worker(settings: Settings, data_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``databus worker`` in its own process group, logging to ``data_dir/../worker.log``."""
    env = os.environ | {
        "DATABUS_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DATABUS_PSEUDONYM_KEY": TEST_KEY,
        "DATABUS_PARTITIONS": str(settings.partitions),
    }
    args = ("worker", "--data-dir", str(data_dir), "--session-timeout", "10", *extra)
    return spawn_databus(env, data_dir.parent / "worker.log", *args)


def spawn_databus(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``databus ARGS`` with ``env``, in its own process group, logging to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "databus", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """SIGTERM (graceful) or SIGKILL (a crash), then reap."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


async def wait_caught_up(
    settings: Settings, topics: Sequence[str], *, group: str = APP_ID, limit_s: float = 120.0
) -> None:
    """Return when the worker's group has committed up to the end of ``topics``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + limit_s
        while True:
            behind = [tp for tp in partitions if (await consumer.committed(tp) or 0) < ends[tp]]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker still behind on {behind[:3]}...")
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
