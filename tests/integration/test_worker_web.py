"""The worker's web port serves an operator, never a person's data.

Before: Faust's web server listened on every interface and answered
``GET /table/person-state/<person_ref>/`` with the pensioner account, the death, the
birth day and evidence ids with their times. Now only ``/metrics``, ``/livez`` and
``/readyz`` answer, on 127.0.0.1 unless ``--web-host`` says otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from databus.client.publisher import Publisher
from databus.ops.private_files import loose_modes
from databus.ops.processes import free_ports
from databus.settings import Settings
from databus.streams.names import STATE_TABLE
from databus.streams.web import ROUTES
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input
from tests.integration.workers import fresh_bus, start_worker, stop_worker, wait_caught_up

pytestmark = pytest.mark.integration

CITIZEN = make_citizen_id("370102", dt.date(1950, 5, 1), 77)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our worker
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture(scope="module")
def worker_with_state(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[int, str, Path]]:
    """A worker with a web port, on a bus of its own holding one person's state."""
    tmp = tmp_path_factory.mktemp("worker-web")
    with fresh_bus(tmp, Settings().cache_dir) as settings:
        port = free_ports(1)[0]
        process = start_worker(settings, tmp / "worker", "--web-port", str(port))
        try:

            async def publish() -> str:
                async with Publisher(settings) as publisher:
                    sent = await publisher.publish(
                        "hrss.pensioner.v1", sample_input("hrss.pensioner.v1", CITIZEN)
                    )
                assert isinstance(sent, Message)
                assert sent.key is not None
                await wait_caught_up(settings, ["hrss.pensioner.v1"])
                return sent.key.decode()

            person_ref = asyncio.run(publish())
            yield port, person_ref, tmp / "worker"
        finally:
            stop_worker(process)


def test_only_the_operator_routes_answer(worker_with_state: tuple[int, str, Path]) -> None:
    port, person_ref, _ = worker_with_state
    base = f"http://127.0.0.1:{port}"
    for route in ROUTES:
        status, _ = _get(base + route)
        assert status == 200, route
    probes = [
        "/", f"/table/{STATE_TABLE}/{person_ref}/", f"/table/{STATE_TABLE}/", "/table/",
        f"/router/{STATE_TABLE}/{person_ref}/", "/router/", "/graph/", "/stats/",
        "/performance/", "/assignments/", "/signal/", f"/{person_ref}",
    ]  # fmt: skip
    for path in probes:
        status, body = _get(base + path)
        assert status == 404, (path, status)
        assert person_ref.encode() not in body, path


def test_no_route_returns_person_data(worker_with_state: tuple[int, str, Path]) -> None:
    port, person_ref, _ = worker_with_state
    for route in ROUTES:
        _, body = _get(f"http://127.0.0.1:{port}{route}")
        assert person_ref.encode() not in body, route
        assert b"PA-1" not in body, route  # the pensioner account of the sample record


def test_the_web_port_listens_on_loopback_only(worker_with_state: tuple[int, str, Path]) -> None:
    port, _, _ = worker_with_state
    # 0100007F is 127.0.0.1 as /proc/net/tcp writes it; 00000000 would be every interface.
    assert _listening(port) == {"0100007F"}


def test_the_worker_tables_are_private(worker_with_state: tuple[int, str, Path]) -> None:
    """Its RocksDB tables hold every person's state: 0700 directories, 0600 files."""
    _, _, data_dir = worker_with_state
    assert any(data_dir.rglob("*")), "the worker wrote its tables"
    assert loose_modes(data_dir) == []
