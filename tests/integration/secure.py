"""A secure broker for the governance tests: SASL/SCRAM, ACLs enforced, grants applied.

Started once per session by the ``secure_bus`` fixture (conftest.py) on free ports,
with the test grants below, every topic (``topics apply``) and every derived user and
ACL (``acl apply``); tests act as those users with the credentials ``acl apply`` wrote.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from databus.client.publisher import Publisher
from databus.governance.access import derive_access
from databus.governance.grants import load_grants
from databus.governance.views import catalog_with_views
from databus.identity import Pseudonymizer
from databus.internals import kafka_client
from databus.ops.acls import apply_access
from databus.ops.broker import LocalBroker, free_ports
from databus.ops.broker_security import ADMIN_USER
from databus.ops.topics import apply_topics
from databus.partitioner import default_partition
from databus.settings import Settings
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input
from tests.integration.workers import spawn_databus, stop_worker

PARTITIONS = 4
TEST_KEY = "governance-test-key-at-least-32-bytes-long"

GRANTS = {
    "health.yaml": """\
grants:
  - consumer: civil
    dataset: health.death_certificate.v1
    fields: [person_ref, occurred_at, date_of_death]
    purpose: "End social assistance after a death."
    expires: 2099-12-31
  - consumer: hrss
    dataset: health.death_certificate.v1
    fields: [person_ref, certificate_no, date_of_death, institution_code]
    purpose: "Stop pensions after a death."
    legal_basis: "PIPL art. 13(1)(3) and art. 34"
    expires: 2099-12-31
  - consumer: police
    dataset: health.death_certificate.v1
    fields: [person_ref, date_of_death]
    purpose: "Close missing-person cases."
    expires: 2001-01-31
""",
    "civil.yaml": """\
grants:
  - consumer: hrss
    dataset: civil.funeral.v1
    fields: [person_ref, date_of_death]
    purpose: "Stop pensions after a funeral."
    expires: 2099-12-31
""",
    "databus.yaml": """\
grants:
  - consumer: hrss
    dataset: derived.pension_status.v1
    fields: [person_ref, pensioner_account, decision, reason, as_of, qualified_until,
             evidence, date_of_death, rule_version]
    purpose: "Stop, remind and resume pensions."
    legal_basis: "PIPL art. 13(1)(3) and art. 34"
    expires: 2099-12-31
""",
}


@dataclass(frozen=True)
class SecureBus:
    """The secure broker, its super user's settings, and every derived user's."""

    admin: Settings
    grants: Path
    credentials: Path

    def settings(self, user: str, **overrides: Any) -> Settings:
        """Settings that log in as ``user`` (with the credentials ``acl apply`` wrote)."""
        return Settings(**(self._values(user) | overrides))

    def env(self, user: str) -> dict[str, str]:
        """``DATABUS_*`` variables of ``user``, for a subprocess."""
        values = self._values(user) | {"grants": str(self.grants)}
        return os.environ | {f"DATABUS_{k.upper()}": str(v) for k, v in values.items()}

    def _values(self, user: str) -> dict[str, Any]:
        values: dict[str, Any] = {
            "bootstrap_servers": self.admin.bootstrap_servers,
            "partitions": PARTITIONS,
            "pseudonym_key": TEST_KEY,
            "demo": False,
            "grants": self.grants,
        }
        if user == ADMIN_USER:
            _, _, password = self.admin.sasl_credentials()
            values |= {
                "security_protocol": self.admin.security_protocol,
                "sasl_username": ADMIN_USER,
                "sasl_password": password,
            }
            if self.admin.ssl_cafile is not None:
                values["ssl_cafile"] = self.admin.ssl_cafile
            return values
        text = (self.credentials / f"{user}.env").read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.startswith("export DATABUS_"):
                name, _, value = line.removeprefix("export DATABUS_").partition("=")
                if name != "BOOTSTRAP_SERVERS":
                    values[name.lower()] = value
        return values


def write_grants(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in GRANTS.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@contextmanager
def secure_bus(state_dir: Path, cache_dir: Path) -> Iterator[SecureBus]:
    """Start the secure broker and apply topics, users and ACLs as ``databus`` would."""
    port, controller = free_ports(2)
    broker = LocalBroker(state_dir / "broker", cache_dir, port, controller, secure=True)
    broker.start()
    try:
        grants_dir = write_grants(state_dir / "grants")
        admin = Settings(
            **broker.admin_settings(),
            partitions=PARTITIONS,
            pseudonym_key=TEST_KEY,  # type: ignore[arg-type]
            demo=False,
            grants=grants_dir,
        )
        grants = load_grants(grants_dir)
        catalog = catalog_with_views(grants)
        credentials = state_dir / "credentials"
        asyncio.run(apply_topics(admin, catalog))
        asyncio.run(
            apply_access(
                admin,
                derive_access(grants, today=dt.date.today()),  # noqa: DTZ011 - far from expiry
                managed_topics=[d.topic for d in catalog],
                credentials_dir=credentials,
            )
        )
        yield SecureBus(admin, grants_dir, credentials)
    finally:
        broker.stop()


def start_databus(bus: SecureBus, user: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``databus ARGS`` as ``user``, in its own process group, logging to ``log``."""
    return spawn_databus(bus.env(user), log, *args)


stop = stop_worker
"""SIGTERM (or SIGKILL: a crash), then reap."""


def run_databus(bus: SecureBus, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``databus ARGS`` as ``user`` and wait for it."""
    return subprocess.run(
        [sys.executable, "-m", "databus", *args],
        env=bus.env(user),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class Record:
    """A committed message, as read back."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


async def read_topic(settings: Settings, topic: str) -> list[Record]:
    """Every committed message of ``topic`` now (read_committed, no group)."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        group_id=None,
        isolation_level="read_committed",
        auto_offset_reset="earliest",  # a reset racing with the seek must not skip records
    )
    await consumer.start()
    try:
        cluster = await kafka_client(consumer).fetch_all_metadata()
        numbers = sorted(cluster.partitions_for_topic(topic) or ())
        partitions = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Record] = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            fetched = await consumer.getmany(*pending, timeout_ms=500)
            for tp, messages in fetched.items():
                records += [
                    Record(tp.partition, m.offset, m.key, m.value, dict(m.headers))
                    for m in messages
                    if m.offset < ends[tp]
                ]
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()


async def wait_for(
    settings: Settings, topic: str, count: int, *, limit_s: float = 90.0
) -> list[Record]:
    """The records of ``topic`` once it holds at least ``count`` of them."""
    deadline = time.monotonic() + limit_s
    while True:
        records = await read_topic(settings, topic)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.5)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples a process serves on ``http://127.0.0.1:PORT/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        text = page.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(port: int, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return scrape(port).get((name, tuple(sorted(labels.items()))), 0.0)


def wait_until(check: Any, what: str, *, limit_s: float = 60.0) -> None:
    """Poll ``check()`` until it is true."""
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def values(records: Sequence[Record]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


class ShareWorker:
    """``databus share worker`` as the databus-share user, with its metrics port."""

    def __init__(self, bus: SecureBus, log: Path) -> None:
        self.bus = bus
        self.log = log
        self.port = free_ports(1)[0]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ("share", "worker", "--metrics-port", str(self.port), "--session-timeout", "10")
        self.process = start_databus(self.bus, "databus-share", self.log, *args)
        wait_until(self.serving, f"the share worker's metrics ({self.log})")

    def serving(self) -> bool:
        try:
            return self.metric("databus_share_grants", state="active") > 0
        except OSError:
            assert self.process is not None
            assert self.process.poll() is None, self.tail()
            return False

    def tail(self) -> str:
        """The end of its log, for assertion messages."""
        return self.log.read_text(errors="replace")[-3000:]

    def metric(self, name: str, **labels: str) -> float:
        return sample(self.port, name, **labels)

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None:
            stop(self.process, kill=kill)
            self.process = None


async def publish(bus: SecureBus, agency: str, dataset: str, ids: list[str]) -> list[Message]:
    """Publish one record per ID number as ``agency``; the messages (ce_id, key)."""
    async with Publisher(bus.settings(agency), source=agency) as publisher:
        sent = [await publisher.publish(dataset, sample_input(dataset, i)) for i in ids]
    assert all(isinstance(m, Message) for m in sent), sent
    return [m for m in sent if isinstance(m, Message)]


def mine(records: list[Record], messages: list[Message]) -> list[Record]:
    """The records (of a share topic) that are shares of ``messages``."""
    ids = {m.id.encode() for m in messages}
    return [r for r in records if r.headers.get("ce_id") in ids]


async def wait_for_shares(
    bus: SecureBus, topic: str, messages: list[Message], *, limit_s: float = 90.0
) -> list[Record]:
    """The records of ``topic`` once every one of ``messages`` has been shared there."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        records = await read_topic(bus.admin, topic)
        if len({r.headers["ce_id"] for r in mine(records, messages)}) >= len(messages):
            return records
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{topic}: {len(mine(records, messages))} of {len(messages)}")
        await asyncio.sleep(0.5)


def citizens_in(partition: int, count: int, *, born: dt.date) -> list[str]:
    """``count`` synthetic ID numbers whose person_ref lands in ``partition``."""
    pseudonyms = Pseudonymizer(TEST_KEY.encode())
    found: list[str] = []
    for sequence in range(1, 1000):
        citizen_id = make_citizen_id("370102", born, sequence)
        key = pseudonyms.person_ref(citizen_id).encode()
        if default_partition(key, PARTITIONS) == partition:
            found.append(citizen_id)
            if len(found) == count:
                return found
    raise AssertionError(f"not {count} people born {born} in partition {partition}")


def audit_verify(bus: SecureBus, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``databus audit verify ARGS`` as ``user``."""
    return run_databus(bus, user, "audit", "verify", *args)
