"""The decision agent's wiring, with Faust's test context (memory store, no broker)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from databus.catalog import CATALOG, CLOCK
from databus.client.intake import Intake
from databus.identity import Pseudonymizer
from databus.partitioner import default_partition
from databus.records import ClockTick
from databus.rules import PersonState, load_policy
from databus.settings import Settings
from databus.streams.app import DecisionEngine, EngineOptions
from databus.streams.processor import Output
from databus.wire import Encoder, Message
from tests.factories import make_citizen_id, sample_input

KEY = b"wiring-test-key-of-at-least-32-bytes"


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> DecisionEngine:
    settings = Settings(bootstrap_servers="127.0.0.1:1", partitions=4)
    engine = DecisionEngine(
        settings,
        load_policy(),
        EngineOptions(store="memory://", datadir=tmp_path, batch_path=False, demo_broker=False),
    )
    emitted: list[Output] = []
    monkeypatch.setattr(engine, "emit", emitted.append)
    engine.emitted = emitted  # type: ignore[attr-defined]
    return engine


def _message(dataset: str, citizen_id: str, **fields: Any) -> Message:
    intake = Intake(CATALOG.get(dataset), Pseudonymizer(KEY))
    outcome = intake.from_json(orjson.dumps(sample_input(dataset, citizen_id, **fields)))
    assert isinstance(outcome, Message)
    return outcome


async def _put(agent: Any, message: Message, topic: str | None = None) -> None:
    """Put ``message`` on the partition its key hashes to, as a producer would."""
    assert message.key is not None
    partition = default_partition(message.key, 4)
    await agent.put(
        value=message.value, key=message.key, headers=message.headers, partition=partition
    )


async def test_evidence_for_a_pensioner_is_confirmed_and_state_kept(
    engine: DecisionEngine,
) -> None:
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), 11)
    pensioner = _message(
        "hrss.pensioner.v1", citizen_id, occurred_at="2026-01-05T09:00:00+08:00",
        benefit_start="2025-06-01",
    )  # fmt: skip
    visit = _message(
        "health.hospital_visit.v1", citizen_id, occurred_at="2026-03-02T10:15:00+08:00"
    )
    async with engine.agent.test_context() as agent:
        await _put(agent, pensioner)
        await _put(agent, visit)
    outputs: list[Output] = engine.emitted  # type: ignore[attr-defined]
    decisions = [d for output in outputs for d in output.decisions]
    assert [d.record.decision for d in decisions] == ["confirmed"]  # type: ignore[union-attr]
    stored = engine.state.get(pensioner.key)
    assert stored is not None
    assert PersonState.from_bytes(stored).person_ref == pensioner.key.decode()  # type: ignore[union-attr]


async def test_a_poison_message_is_dead_lettered_and_the_agent_goes_on(
    engine: DecisionEngine,
) -> None:
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), 12)
    pensioner = _message("hrss.pensioner.v1", citizen_id)
    async with engine.agent.test_context() as agent:
        await agent.put(value=b"\xffgarbage", key=pensioner.key, headers=pensioner.headers)
        await _put(agent, pensioner)
        tick = Encoder(CLOCK, "test").encode(
            ClockTick(as_of=dt.date(2026, 1, 6)).model_dump(mode="json")
        )
        await agent.put(value=b"{}", key=None, headers=tick.headers)
    outputs: list[Output] = engine.emitted  # type: ignore[attr-defined]
    dead = [r for output in outputs for r in output.dead_letters]
    assert len(dead) >= 1
    assert "invalid hrss.pensioner.v1" in dead[0].rejection.reasons[0].message
    assert dead[0].reason == "undecodable"
    assert engine.state.get(pensioner.key) is not None


async def test_revoked_partitions_lose_their_due_index(engine: DecisionEngine) -> None:
    from faust.types import TP  # noqa: PLC0415

    processor = engine.processor
    processor._due.update({1: {b"X": dt.date(2026, 1, 1)}, 2: {b"Y": dt.date(2026, 1, 1)}})
    await engine.app.on_partitions_revoked.send({TP("system.clock.v1", 1)})
    assert set(processor._due) == {2}
