"""Properties of the rules over random histories of one person (hypothesis).

A history mixes every kind of source event, in any order, with ticks on any day and
redeliveries of earlier events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databus.records import ElderlyAllowance, PensionStatus
from databus.rules import Decision, Observation, PersonState, next_due, on_event, on_tick
from databus.rules.dates import month_index, month_text
from tests.unit.rules.builders import (
    PERSON,
    POLICY,
    Step,
    Tick,
    certificate,
    exam,
    face,
    funeral,
    household,
    pensioner,
    tap,
    visit,
)

BASE = dt.date(2024, 1, 1)
UTC = dt.UTC

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


Make = Callable[[str], Observation]
"""An observation waiting for its event id."""


@dataclass(frozen=True)
class Ticks:
    """``count`` ticks, ``gap`` days apart, from ``start``."""

    start: int
    count: int
    gap: int


@dataclass(frozen=True)
class Again:
    """Redeliver an earlier observation (the ``pick``-th modulo how many there are)."""

    pick: int


def _moment(offset: int, half_hours: int) -> dt.datetime:
    start = dt.datetime(BASE.year, BASE.month, BASE.day, tzinfo=UTC)
    return start + dt.timedelta(days=offset, minutes=30 * half_hours)


def _life(offset: int, half_hours: int, kind: str, verified: bool) -> Make:
    when = _moment(offset, half_hours)
    if kind == "visit":
        return lambda event_id: visit(event_id, when, verified=verified)
    if kind == "tap":
        return lambda event_id: tap(event_id, when, verified=verified)
    make = face if kind == "face" else exam
    return lambda event_id: make(event_id, when)


def _pensioner(offset: int, half_hours: int, start: int, status: str) -> Make:
    when, begins = _moment(offset, half_hours), (BASE + dt.timedelta(days=start)).isoformat()
    return lambda event_id: pensioner(event_id, when, benefit_start=begins, status=status)


ANNOUNCED = 366
"""The contract refuses a ``benefit_start`` more than a year after its record."""


@st.composite
def _pensioners(draw: st.DrawFn, day: st.SearchStrategy[int]) -> Make:
    """A pensioner record whose benefit starts at most a year after the record."""
    offset = draw(day)
    start = draw(st.integers(-800, offset + ANNOUNCED))
    status = draw(st.sampled_from(["active", "active", "terminated"]))
    return _pensioner(offset, draw(st.integers(0, 47)), start, status)


def _household(offset: int, half_hours: int, event: str, age: int, region: str) -> Make:
    when, born = _moment(offset, half_hours), (BASE - dt.timedelta(days=age)).isoformat()
    return lambda event_id: household(event_id, when, event, born=born, region=region)


def _death(offset: int, half_hours: int, source: str, days_before: int) -> Make:
    when = _moment(offset, half_hours)
    died = (when.date() - dt.timedelta(days=days_before)).isoformat()
    if source == "certificate":
        return lambda event_id: certificate(event_id, when, died)
    if source == "funeral":
        return lambda event_id: funeral(event_id, when, died)
    return lambda event_id: household(event_id, when, "deregistered_death", date_of_death=died)


def _specs(span: int) -> st.SearchStrategy[Make | Tick | Ticks | Again]:
    day = st.integers(0, span)
    half_hours = st.integers(0, 47)
    life = st.builds(
        _life, day, half_hours, st.sampled_from(["face", "exam", "visit", "tap"]), st.booleans()
    )
    pension = _pensioners(day)
    home = st.builds(
        _household,
        day,
        half_hours,
        st.sampled_from(["registered", "moved_in", "moved_out", "updated"]),
        st.integers(75 * 365, 101 * 365),
        st.sampled_from(["370102", "370102", "110101"]),
    )
    death = st.builds(
        _death,
        day,
        half_hours,
        st.sampled_from(["certificate", "funeral", "household"]),
        st.integers(0, 60),
    )
    tick = st.builds(lambda offset: Tick(BASE + dt.timedelta(days=offset)), day)
    ticks = st.builds(Ticks, day, st.integers(1, 40), st.integers(1, 20))
    again = st.builds(Again, st.integers(0, 1000))
    return st.one_of(*[tick, ticks, life, life] * 2, pension, home, home, death, again)


@st.composite
def histories(draw: st.DrawFn, span: int = 900, size: int = 40) -> list[Step]:
    """A random history of one person: any events, ticks and redeliveries, any order.

    Most begin with a pensioner or household record, so that every rule has something
    to decide.
    """
    specs = _specs(span)
    first = draw(st.lists(st.sampled_from(["pensioner", "household"]), max_size=2))
    plan: list[Make | Tick | Ticks | Again] = [
        _pensioner(0, 0, draw(st.integers(-800, ANNOUNCED)), "active")
        if kind == "pensioner"
        else _household(0, 0, "registered", draw(st.integers(75 * 365, 101 * 365)), "370102")
        for kind in first
    ]
    plan += draw(st.lists(specs, min_size=3, max_size=size))
    steps: list[Step] = []
    earlier: list[Observation] = []
    for index, item in enumerate(plan):
        if isinstance(item, Tick):
            steps.append(item)
        elif isinstance(item, Ticks):
            steps += [
                Tick(BASE + dt.timedelta(days=item.start + n * item.gap)) for n in range(item.count)
            ]
        elif isinstance(item, Again):
            if earlier:
                steps.append(earlier[item.pick % len(earlier)])
        else:
            observation = item(f"e{index}")
            earlier.append(observation)
            steps.append(observation)
    return steps


def _apply(state: PersonState, step: Step) -> tuple[PersonState, list[Decision]]:
    if isinstance(step, Tick):
        return on_tick(state, step.as_of, POLICY)
    return on_event(state, step, POLICY)


def _final(steps: list[Step]) -> PersonState:
    state = PersonState.empty(PERSON)
    for step in steps:
        state, _ = _apply(state, step)
    return state


@PROPERTY_SETTINGS
@given(histories())
def test_nothing_is_confirmed_or_granted_once_death_is_known(steps: list[Step]) -> None:
    state = PersonState.empty(PERSON)
    for step in steps:
        dead = state.death is not None
        state, decisions = _apply(state, step)
        for decision in decisions:
            record = decision.record
            if dead and isinstance(record, PensionStatus):
                assert (record.decision, record.reason) == ("suspended", "deceased"), record
            if dead and isinstance(record, ElderlyAllowance):
                # Only a stop: a move out dated before the death's stop stops it earlier.
                assert record.decision == "stopped", f"allowance decision after death: {record}"
            if isinstance(record, PensionStatus) and record.reason == "deceased":
                assert state.death is not None
                assert record.date_of_death == state.death.date_of_death


@PROPERTY_SETTINGS
@given(histories())
def test_no_allowance_is_effective_after_the_month_following_death(steps: list[Step]) -> None:
    state = PersonState.empty(PERSON)
    allowances: list[ElderlyAllowance] = []
    for step in steps:
        state, decisions = _apply(state, step)
        allowances += [d.record for d in decisions if isinstance(d.record, ElderlyAllowance)]
    if state.death is None:
        return
    limit = month_text(month_index(state.death.date_of_death) + 1)
    # A consumer applies decisions in order, each from its effective month on.
    months = {a.effective_month for a in allowances if a.effective_month >= limit} | {limit}
    for month in months:
        in_force = [a for a in allowances if a.effective_month <= month]
        assert not in_force or in_force[-1].decision == "stopped", (month, allowances)


@PROPERTY_SETTINGS
@given(histories(), st.integers(-100, 1300))
def test_next_due_is_the_first_deciding_tick(steps: list[Step], offset: int) -> None:
    state = _final(steps)
    as_of = BASE + dt.timedelta(days=offset)
    due = next_due(state, POLICY)
    after, decisions = on_tick(state, as_of, POLICY)
    if due is None or as_of < due:
        assert decisions == []
        assert after == state
    else:
        assert decisions, "a due person must get a decision, or ticks would revisit it forever"
        again = next_due(after, POLICY)
        assert again is None or again > as_of


@PROPERTY_SETTINGS
@given(histories())
def test_state_round_trips_through_bytes(steps: list[Step]) -> None:
    state = _final(steps)
    assert PersonState.from_bytes(state.to_bytes()) == state
    assert state.to_json()["person_ref"] == PERSON


@PROPERTY_SETTINGS
@given(histories(span=30))
def test_redelivery_changes_nothing_and_ids_are_unique(steps: list[Step]) -> None:
    state = PersonState.empty(PERSON)
    applied: set[int] = set()
    ids: list[str] = []
    for step in steps:
        before = state
        state, decisions = _apply(state, step)
        if isinstance(step, Observation):
            if id(step) in applied:
                assert decisions == []
                assert state == before
            applied.add(id(step))
            again, more = on_event(state, step, POLICY)
            assert more == []
            assert again == state
        ids += [d.id for d in decisions]
    assert len(ids) == len(set(ids))


@PROPERTY_SETTINGS
@given(histories())
def test_rules_never_mutate_their_input(steps: list[Step]) -> None:
    state = PersonState.empty(PERSON)
    for step in steps:
        before, frozen = state, state.to_bytes()
        state, _ = _apply(state, step)
        assert before.to_bytes() == frozen
