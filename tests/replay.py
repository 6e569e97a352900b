"""The pure decision rules run over a simulated province in order, as a reference for
what a worker must decide (one tick after each day, persons visited when due)."""

from __future__ import annotations

import datetime as dt
import heapq
from collections import Counter

from databus.catalog import CATALOG
from databus.client.intake import Intake
from databus.identity import Pseudonymizer
from databus.records import BusRecord
from databus.rules import engine
from databus.rules.decision import Decision, Observation
from databus.rules.policy import Policy
from databus.rules.state import PersonState
from databus.sim import Province
from databus.wire import Message
from tests.conftest import TEST_KEY

SOURCES = [dataset.name for dataset in CATALOG.sources()]


def replay(province: Province) -> tuple[Counter[tuple[str, str, str]], set[str], int]:
    """Run the pure decision rules over the simulation, a tick after each day, as the
    worker would; returns the decisions by (dataset, decision, reason), the persons
    reminded, and the pensioners tracked."""
    pseudonymizer = Pseudonymizer(TEST_KEY)
    policy = Policy()
    intakes = {name: Intake(CATALOG.get(name), pseudonymizer) for name in SOURCES}
    states: dict[str, PersonState] = {}
    due: list[tuple[dt.date, str]] = []
    decided: Counter[tuple[str, str, str]] = Counter()
    reminded: set[str] = set()

    def settle(ref: str, state: PersonState, decisions: list[Decision]) -> None:
        states[ref] = state
        for decision in decisions:
            record = decision.record.model_dump()
            kind = record.get("decision") or record["kind"]
            decided[decision.dataset, kind, record.get("reason", "")] += 1
            if kind == "reminder":
                reminded.add(ref)
        when = engine.next_due(state, policy)
        if when is not None:
            heapq.heappush(due, (when, ref))

    def observe(dataset: str, values: dict[str, object]) -> None:
        message = intakes[dataset].from_mapping(values)
        assert isinstance(message, Message)
        model = CATALOG.get(dataset).bus_model
        record = model.model_validate_json(message.value)
        assert isinstance(record, BusRecord)
        ref = record.person_ref
        state = states.get(ref) or PersonState.empty(ref)
        settle(ref, *engine.on_event(state, Observation(message.id, dataset, record), policy))

    for dataset, values in province.roster():
        observe(dataset, values)
    for day in province.days():
        for dataset, values in day.records:
            observe(dataset, values)
        ticked: set[str] = set()
        while due and due[0][0] <= day.date:
            _, ref = heapq.heappop(due)
            if ref not in ticked:
                ticked.add(ref)
                settle(ref, *engine.on_tick(states[ref], day.date, policy))
    tracked = sum(1 for state in states.values() if state.pension is not None)
    return decided, reminded, tracked
