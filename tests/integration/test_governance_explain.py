"""`databus explain` for an agency's officer: least privilege on the secure broker.

The pension agency (hrss) explains a person's pension decision from what its grants
share with it (its views of the decisions and of the death certificates) and is told
what it could not see; an agency with no grant of the decisions sees none; the super
user keeps the full view, with the worker's state. Before, explain needed the super
user: reading the sources as hrss was refused by the broker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from databus.identity import Pseudonymizer
from databus.streams.names import changelog_topic
from tests.factories import make_citizen_id
from tests.integration.secure import (
    TEST_KEY,
    SecureBus,
    ShareWorker,
    publish,
    read_topic,
    run_databus,
    start_databus,
    stop,
)

pytestmark = pytest.mark.integration

DEATHS = "health.death_certificate.v1"
PENSIONS = "derived.pension_status.v1"
HRSS_PENSIONS = f"share.hrss.{PENSIONS}"


@pytest.fixture(scope="module")
def workers(secure: SecureBus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A decision worker and a share worker, as their own principals."""
    logs = tmp_path_factory.mktemp("explain")
    decisions = start_databus(
        secure,
        "databus-decisions",
        logs / "decisions.log",
        *("worker", "--memory-store", "--data-dir", str(logs / "data")),
        *("--session-timeout", "10"),
    )
    share = ShareWorker(secure, logs / "share.log")
    try:
        share.start()
        yield logs
    finally:
        share.stop()
        stop(decisions)


@pytest.fixture(scope="module")
def decided(secure: SecureBus, workers: Path) -> tuple[str, str]:
    """A pensioner's death decided and shared: the person_ref and the death's ce_id."""
    return asyncio.run(a_decision_shared_with_hrss(secure, workers))


async def a_decision_shared_with_hrss(secure: SecureBus, logs: Path) -> tuple[str, str]:
    """Publish a pensioner and their death; the person_ref and the death's ce_id, once
    hrss's view of the pension decisions holds the suspension."""
    citizen_id = make_citizen_id("370102", dt.date(1941, 2, 2), 611)
    ref = Pseudonymizer(TEST_KEY.encode()).person_ref(citizen_id)
    await publish(secure, "hrss", "hrss.pensioner.v1", [citizen_id])
    (death,) = await publish(secure, "health", DEATHS, [citizen_id])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while not [r for r in await read_topic(secure.admin, HRSS_PENSIONS) if r.key == ref.encode()]:
        assert loop.time() < deadline, (logs / "decisions.log").read_text(errors="replace")[-3000:]
        await asyncio.sleep(0.5)
    return ref, death.id


def explain_as(secure: SecureBus, user: str, ref: str) -> subprocess.CompletedProcess[str]:
    shown = run_databus(secure, user, "explain", ref)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return shown


def test_an_agency_explains_a_person_from_its_grants_alone(
    secure: SecureBus, decided: tuple[str, str]
) -> None:
    ref, death_id = decided
    lines = explain_as(secure, "hrss", ref).stdout.splitlines()
    assert lines[0].startswith(f"person {ref}")
    assert lines[1] == "state: none"
    decisions = [line for line in lines if line.startswith("- ")]
    assert [line.split()[2:4] for line in decisions] == [["pension", "suspended"]]
    assert "(deceased)" in decisions[0]
    assert any(line.strip().startswith(f"because {DEATHS} {death_id}: ") for line in lines)
    assert (
        f"read as hrss through: {HRSS_PENSIONS}, share.hrss.{DEATHS}, share.hrss.civil.funeral.v1"
        in lines
    )
    unseen = "\n".join(lines[lines.index("not seen by hrss:") :])
    assert f"{changelog_topic()} (the worker's state)" in unseen
    assert "derived.fraud_alert.v1" in unseen


def test_a_consumer_with_no_grant_of_the_decisions_sees_none(
    secure: SecureBus, decided: tuple[str, str]
) -> None:
    ref, _ = decided
    civil = explain_as(secure, "civil", ref).stdout
    assert "no decisions" in civil
    assert "pension" not in civil.split("not seen by civil:")[0]
    assert PENSIONS in civil.split("not seen by civil:")[1]


def test_the_super_user_keeps_the_full_view(secure: SecureBus, decided: tuple[str, str]) -> None:
    ref, death_id = decided
    full = explain_as(secure, "admin", ref).stdout
    assert full.splitlines()[1].startswith("state: {"), "the worker's state"
    assert f"because {DEATHS} {death_id}: " in full
    assert "not seen by" not in full
