"""Kill -9 the decision worker at random moments of a 100,000-event scenario.

The same scenario (a synthetic province, cut into lock-step steps: tests/faults/
scenario.py) runs twice against a real broker: once without interruption, once with
SIGKILLs at seeded random moments, each followed by a restart, half of them after
deleting the worker's local RocksDB state, each landing while one of the worker's
transactions is open. Read ``read_committed``, the killed run's decisions must be the
uninterrupted run's, id for id and field for field, each exactly once (no duplicates:
the worker is exactly-once by default); both must equal what the worker's own
processor decides in memory. Records of the transactions the kills cut short are in
the topics, and no reader of committed data sees them (docs/faults.md).

This test found that the batch path wrote a batch's new state into the local RocksDB
before Kafka had the batch's decisions, so a kill in between lost them (docs/faults.md);
streams/output.py now holds state back until the decisions and then the changelog are
delivered. Lost decisions fail the test as ``DecisionsLost``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections import Counter
from pathlib import Path

import pytest
from pydantic import BaseModel

from databus.rules import load_policy
from databus.settings import Settings
from databus.sim import SimulationConfig
from databus.streams.names import changelog_topic
from tests.faults.chaos import Kill, RunReport, WorkerProcess, choose_kills, drive
from tests.faults.conftest import Note
from tests.faults.scenario import (
    DECISION_KINDS,
    DERIVED,
    DecisionFacts,
    Scenario,
    build_scenario,
    decide_in_memory,
    facts_of,
    kind_of,
)
from tests.integration.bus import read_events, read_records
from tests.integration.workers import TEST_KEY, fresh_bus


class DecisionsLost(AssertionError):
    """Decisions of the uninterrupted run that the killed run never delivered."""


pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(900),
]

PARTITIONS = 4  # what fresh_bus creates
PROVINCE = SimulationConfig(seed=7, residents=40_000, days=60, start=dt.date(2025, 1, 1))
BLOCK_DAYS = 10
KILLS = 10
#: Seeds the kill moments; set DATABUS_FAULT_SEED to try others.
KILL_SEED = int(os.environ.get("DATABUS_FAULT_SEED", "20260601"))

Derived = list[tuple[str, str, BaseModel]]


def _run(tmp_path: Path, scenario: Scenario, kills: list[Kill]) -> tuple[RunReport, Derived, int]:
    """The scenario on a broker of its own; returns the run, every decision read back
    (read_committed), and how many records of the derived topics and the changelog only
    a read_uncommitted reader sees (those of aborted transactions)."""
    with fresh_bus(tmp_path, Settings().cache_dir) as settings:
        assert settings.partitions == PARTITIONS
        worker = WorkerProcess(settings, tmp_path / "worker", tmp_path / "worker.log")
        report = asyncio.run(drive(settings, scenario, worker, kills))
        events = asyncio.run(read_events(settings, DERIVED, idle=3))
        written = [*DERIVED, changelog_topic()]
        everything = asyncio.run(read_records(settings, written))
        committed = asyncio.run(read_records(settings, written, isolation_level="read_committed"))
    aborted = len(everything) - len(committed)
    return report, [(e.envelope.id, e.envelope.type, e.record) for e in events], aborted


def _differences(expected: DecisionFacts, actual: DecisionFacts) -> str:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(i for i in set(expected) & set(actual) if expected[i] != actual[i])
    shown = [f"missing {i}: {expected[i]}" for i in missing[:5]]
    shown += [f"extra {i}: {actual[i]}" for i in extra[:5]]
    shown += [f"changed {i}: {expected[i]} -> {actual[i]}" for i in changed[:5]]
    counts = f"{len(missing)} missing, {len(extra)} extra, {len(changed)} changed"
    return counts + "\n" + "\n".join(shown)


def test_kill_9_at_random_moments_changes_no_decision(tmp_path: Path, figures: Note) -> None:
    scenario = build_scenario(PROVINCE, TEST_KEY.encode(), PARTITIONS, block_days=BLOCK_DAYS)
    assert scenario.events >= 100_000
    expected = decide_in_memory(scenario, PARTITIONS, load_policy())
    kinds = Counter(kind_of(*fact) for fact in expected.values())
    assert set(kinds) == DECISION_KINDS
    shown = sorted(f"{kind[1]}/{kind[2]}={n}" for kind, n in kinds.items())
    figures("decision_kinds", ", ".join(shown))

    reference_run, reference, _ = _run(tmp_path / "uninterrupted", scenario, [])
    uninterrupted = facts_of(reference)
    assert len(reference) == len(uninterrupted), "an uninterrupted run decides each once"
    assert uninterrupted == expected, _differences(expected, uninterrupted)

    kills = choose_kills(scenario, KILLS, KILL_SEED)
    assert {kill.wipe for kill in kills} == {True, False}
    killed_run, raw, aborted = _run(tmp_path / "killed", scenario, kills)
    assert len(killed_run.kills) == KILLS
    figures("aborted_records", aborted)
    decided = facts_of(raw)
    for ident, dataset, record in raw:  # a duplicate is the same decision, field for field
        assert decided[ident] == (dataset, record.model_dump(mode="json")), ident

    lost = set(uninterrupted) - set(decided)
    _note(figures, scenario=scenario, reference=(reference_run, len(uninterrupted)),
          killed_run=killed_run, raw=raw, decided=decided, lost=lost)  # fmt: skip
    wrong = {i: decided[i] for i in decided if uninterrupted.get(i) != decided[i]}
    assert not wrong, _differences(uninterrupted, decided)
    if lost:
        raise DecisionsLost(_differences(uninterrupted, decided))
    assert decided == uninterrupted
    assert len(raw) == len(decided), f"{len(raw) - len(decided)} decisions delivered twice"
    # The kills did cut transactions short, and what those had written stays invisible.
    assert sum(outcome.in_transaction for outcome in killed_run.kills) > 0
    assert aborted > 0


def _note(
    figures: Note,
    *,
    scenario: Scenario,
    reference: tuple[RunReport, int],
    killed_run: RunReport,
    raw: Derived,
    decided: DecisionFacts,
    lost: set[str],
) -> None:
    """Record what the runs measured (docs/faults.md)."""
    reference_run, reference_decisions = reference
    outcomes = killed_run.kills
    copies = Counter(ident for ident, _, _ in raw)
    figures("seed", KILL_SEED)
    figures("events", scenario.events)
    figures("steps", len(scenario.steps))
    figures("decisions_uninterrupted", reference_decisions)
    figures("uninterrupted_run_s", round(reference_run.seconds, 1))
    figures("kills", len(outcomes))
    figures("kills_mid_step", sum(o.mid_step for o in outcomes))
    figures("kills_in_transaction", sum(o.in_transaction for o in outcomes))
    figures("kills_with_state_wiped", sum(o.kill.wipe for o in outcomes))
    figures("killed_run_s", round(killed_run.seconds, 1))
    figures("recovery_s_max", round(max(o.recovered_s for o in outcomes), 1))
    figures("recovery_s_mean", round(sum(o.recovered_s for o in outcomes) / len(outcomes), 1))
    figures("raw_decisions", len(raw))
    figures("duplicates", len(raw) - len(decided))
    figures("decisions_delivered_more_than_once", sum(1 for n in copies.values() if n > 1))
    figures("decisions_lost", len(lost))
    for outcome in outcomes:
        step = scenario.steps[outcome.kill.step]
        figures(
            f"kill_step_{outcome.kill.step}",
            f"{step.name} ({len(step.messages)} msgs) +{outcome.kill.delay_s:.2f}s "
            f"wipe={outcome.kill.wipe} mid_step={outcome.mid_step} in_txn={outcome.in_transaction} "
            f"recovered_in={outcome.recovered_s:.1f}s",
        )
