"""Invariants of the pure rules over random histories of one person (hypothesis).

What a crash-prone, at-least-once runtime relies on: a redelivered event or tick changes
nothing a consumer can see (same state, only decision ids it has already seen), and
where DOMAIN.md says the arrival order does not matter, it does not. And what a
pensioner relies on: death ends confirmations and allowances, deadlines never drop.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databus.records import ElderlyAllowance, FraudAlert, PensionStatus
from databus.rules import Decision, Observation, PersonState, on_event, on_tick
from databus.rules.dates import add_months, month_index, month_text
from tests.unit.rules.builders import (
    PERSON,
    POLICY,
    SHANGHAI,
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

pytestmark = pytest.mark.faults

BASE = dt.date(2024, 1, 1)
PROPERTIES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Make = Callable[[str], Observation]


def _at(day: int, half_hours: int = 20) -> dt.datetime:
    """A local instant ``day`` days after BASE (Shanghai time)."""
    start = dt.datetime(BASE.year, BASE.month, BASE.day, tzinfo=SHANGHAI)
    return start + dt.timedelta(days=day, minutes=30 * half_hours)


def _date(day: int) -> str:
    return (BASE + dt.timedelta(days=day)).isoformat()


@st.composite
def life_events(draw: st.DrawFn, days: st.SearchStrategy[int]) -> Make:
    """Evidence of life: strong (face, exam, verified visit or tap) or weak."""
    when = _at(draw(days), draw(st.integers(0, 47)))
    kind = draw(st.sampled_from(["face", "exam", "visit", "tap"]))
    verified = draw(st.booleans())
    if kind == "face":
        return lambda i: face(i, when)
    if kind == "exam":
        return lambda i: exam(i, when)
    if kind == "visit":
        return lambda i: visit(i, when, verified=verified)
    return lambda i: tap(i, when, verified=verified)


@st.composite
def death_records(draw: st.DrawFn, days: st.SearchStrategy[int]) -> Make:
    """A death certificate, funeral record or deregistration, dated up to 60 days late."""
    arrives = draw(days)
    when, died = _at(arrives), _date(arrives - draw(st.integers(0, 60)))
    source = draw(st.sampled_from(["certificate", "funeral", "household"]))
    if source == "certificate":
        return lambda i: certificate(i, when, died)
    if source == "funeral":
        return lambda i: funeral(i, when, died)
    return lambda i: household(i, when, "deregistered_death", date_of_death=died)


@st.composite
def pensioner_records(draw: st.DrawFn, days: st.SearchStrategy[int]) -> Make:
    arrives = draw(days)
    when = _at(arrives, draw(st.integers(0, 47)))
    # The contract refuses a benefit_start more than a year after the record.
    start = _date(draw(st.integers(-800, arrives + 366)))
    status = draw(st.sampled_from(["active", "active", "terminated"]))
    account = draw(st.sampled_from(["PA-1", "PA-2"]))
    return lambda i: pensioner(i, when, benefit_start=start, status=status, account=account)


@st.composite
def household_records(draw: st.DrawFn, days: st.SearchStrategy[int]) -> Make:
    when = _at(draw(days), draw(st.integers(0, 47)))
    event = draw(st.sampled_from(["registered", "moved_in", "moved_out", "updated"]))
    born = (BASE - dt.timedelta(days=draw(st.integers(78 * 365, 101 * 365)))).isoformat()
    region = draw(st.sampled_from(["370102", "370102", "110101"]))
    return lambda i: household(i, when, event, born=born, region=region)


@st.composite
def histories(draw: st.DrawFn, span: int = 800, size: int = 40) -> list[Step]:
    """Any events and ticks of one person in any order; most histories start with a
    pensioner or household record so that every rule has something to decide."""
    days = st.integers(0, span)
    item = st.one_of(
        life_events(days),
        life_events(days),
        death_records(days),
        pensioner_records(days),
        household_records(days),
        st.builds(lambda d: Tick(BASE + dt.timedelta(days=d)), days),
        st.builds(lambda d: Tick(BASE + dt.timedelta(days=d)), days),
    )
    first = draw(st.lists(st.one_of(pensioner_records(days), household_records(days)), max_size=2))
    steps: list[Step] = []
    for index, made in enumerate([*first, *draw(st.lists(item, min_size=3, max_size=size))]):
        steps.append(made if isinstance(made, Tick) else made(f"e{index}"))
    return steps


def _apply(state: PersonState, step: Step) -> tuple[PersonState, list[Decision]]:
    if isinstance(step, Tick):
        return on_tick(state, step.as_of, POLICY)
    return on_event(state, step, POLICY)


def _run(steps: Sequence[Step]) -> tuple[PersonState, list[Decision]]:
    state, decisions = PersonState.empty(PERSON), []
    for step in steps:
        state, more = _apply(state, step)
        decisions += more
    return state, decisions


@PROPERTIES
@given(histories())
def test_nothing_is_confirmed_after_a_death_is_known(steps: list[Step]) -> None:
    """Once a death record is in, the only pension decision left is the suspension for
    the death; no allowance is granted or raised; activity only raises alerts."""
    state = PersonState.empty(PERSON)
    for step in steps:
        known_dead = state.death is not None
        state, decisions = _apply(state, step)
        if not known_dead:
            continue
        for decision in decisions:
            record = decision.record
            if isinstance(record, PensionStatus):
                assert (record.decision, record.reason) == ("suspended", "deceased"), record
            elif isinstance(record, ElderlyAllowance):
                assert record.decision == "stopped", record
            else:
                assert isinstance(record, FraudAlert)


@PROPERTIES
@given(histories())
def test_no_allowance_is_effective_after_the_month_following_death(steps: list[Step]) -> None:
    """A consumer that applies the allowance decisions in order, each from its effective
    month, pays nothing from the month after the death on."""
    state, decisions = _run(steps)
    allowances = [d.record for d in decisions if isinstance(d.record, ElderlyAllowance)]
    if state.death is None or not allowances:
        return
    limit = month_text(month_index(state.death.date_of_death) + 1)
    months = sorted({a.effective_month for a in allowances} | {limit})
    for month in (m for m in months if m >= limit):
        in_force = [a for a in allowances if a.effective_month <= month]
        assert in_force[-1].decision == "stopped", (month, allowances)


@PROPERTIES
@given(histories(), st.data())
def test_applying_the_same_event_twice_changes_nothing(
    steps: list[Step], data: st.DataObject
) -> None:
    """A redelivery, right away or later, leaves the state as it was and decides nothing
    a consumer has not seen (by id) already."""
    state, seen = PersonState.empty(PERSON), set[str]()
    applied: list[Observation] = []
    for step in steps:
        state, decisions = _apply(state, step)
        seen |= {d.id for d in decisions}
        if isinstance(step, Observation):
            applied.append(step)
            again, more = on_event(state, step, POLICY)
            assert again == state
            assert {d.id for d in more} <= seen
    if applied:
        late = data.draw(st.sampled_from(applied), label="redelivered later")
        again, more = on_event(state, late, POLICY)
        assert {d.id for d in more} <= seen
        assert again.pension == state.pension
        assert again.death == state.death
        assert again.residence == state.residence


@PROPERTIES
@given(histories(), st.integers(0, 900), st.integers(0, 400))
def test_a_repeated_or_late_tick_decides_nothing(steps: list[Step], day: int, back: int) -> None:
    """A tick delivered again, or a tick for an earlier day right after a later one,
    changes nothing: ticks are idempotent and never move time back."""
    state, _ = _run(steps)
    later = BASE + dt.timedelta(days=day)
    ticked, _ = on_tick(state, later, POLICY)
    for as_of in (later, later - dt.timedelta(days=back)):
        again, decisions = on_tick(ticked, as_of, POLICY)
        assert decisions == []
        assert again == ticked


@PROPERTIES
@given(histories())
def test_deadlines_never_drop_and_ticks_decide_inside_their_windows(steps: list[Step]) -> None:
    """qualified_until only rises; a reminder falls in the 30 days before it, a
    suspension for lack of evidence after it, a confirmation names day + 12 months."""
    state = PersonState.empty(PERSON)
    for step in steps:
        before = state.pension.qualified_until if state.pension else None
        state, decisions = _apply(state, step)
        after = state.pension.qualified_until if state.pension else None
        if before is not None:
            assert after is not None
            assert after >= before
        for decision in decisions:
            record = decision.record
            assert record.person_ref == PERSON
            if not isinstance(record, PensionStatus):
                continue
            reminder_from = record.qualified_until - dt.timedelta(days=POLICY.reminder_days)
            match record.decision, record.reason:
                case "reminder", _:
                    assert reminder_from <= record.as_of <= record.qualified_until
                case "suspended", "no_evidence":
                    assert record.as_of > record.qualified_until
                case "confirmed" | "resumed", _:
                    assert record.qualified_until == add_months(record.as_of, 12)
                    assert record.evidence


# Order independence, where DOMAIN.md and the rules' docstrings promise it.


@st.composite
def deaths_and_activity(draw: st.DrawFn) -> tuple[Observation, list[Observation]]:
    """A tracked pensioner, then a death record and activity around the death, all
    within the 90 days of evidence kept for a pensioner."""
    died = draw(st.integers(100, 400))
    tracked = pensioner("p0", _at(0), benefit_start=_date(died - 200))
    death = certificate("death", _at(died + draw(st.integers(0, 20))), _date(died))
    activity = [
        make(f"a{index}")
        for index, make in enumerate(
            draw(st.lists(life_events(st.integers(died - 20, died + 60)), min_size=1, max_size=6))
        )
    ]
    return tracked, [death, *activity]


@PROPERTIES
@given(deaths_and_activity(), st.data())
def test_alerts_do_not_depend_on_whether_the_death_or_the_activity_arrives_first(
    history: tuple[Observation, list[Observation]], data: st.DataObject
) -> None:
    tracked, events = history
    order = data.draw(st.permutations(events), label="arrival order")

    def alerts(arrival: Sequence[Observation]) -> set[str]:
        return {d.id for d in _run([tracked, *arrival])[1] if isinstance(d.record, FraudAlert)}

    assert alerts(order) == alerts(events)


@PROPERTIES
@given(pensioner_records(st.integers(0, 300)), death_records(st.integers(0, 300)))
def test_the_suspension_for_a_death_is_the_same_whichever_arrives_first(
    make_pensioner: Make, make_death: Make
) -> None:
    record, death = make_pensioner("p"), make_death("d")

    def suspensions(arrival: list[Observation]) -> list[Decision]:
        return [d for d in _run(arrival)[1] if getattr(d.record, "reason", None) == "deceased"]

    assert suspensions([record, death]) == suspensions([death, record])


@PROPERTIES
@given(
    st.lists(pensioner_records(st.integers(0, 300)), min_size=1, max_size=4),
    st.lists(household_records(st.integers(0, 300)), min_size=1, max_size=4),
    st.lists(death_records(st.integers(0, 300)), max_size=3),
    st.randoms(use_true_random=False),
)
def test_the_latest_record_wins_whatever_the_arrival_order(
    pensions: list[Make], homes: list[Make], deaths: list[Make], rng: object
) -> None:
    """The pensioner and household records in force are the latest by occurred_at, and
    every death record is kept as evidence of the death, in any arrival order."""
    records = [make(f"r{index}") for index, make in enumerate([*pensions, *homes, *deaths])]
    shuffled = list(records)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]

    def in_force(state: PersonState) -> tuple[object, ...]:
        pension, residence, death = state.pension, state.residence, state.death
        return (
            None if pension is None else (pension.record_id, pension.account, pension.active),
            None if residence is None else (residence.record_id, residence.resident),
            None if death is None else {ref[0] for ref in death.refs},
        )

    assert in_force(_run(shuffled)[0]) == in_force(_run(records)[0])


@PROPERTIES
@given(
    st.lists(st.integers(0, 30), min_size=3, max_size=3, unique=True),
    st.sampled_from(["visit", "tap"]),
)
def test_a_weak_run_qualifies_in_any_arrival_order(offsets: list[int], kind: str) -> None:
    """Three weak events on three days within 30 days count once the last arrives."""
    start = 200
    tracked = pensioner("p0", _at(0), benefit_start=_date(start - 330))
    make = visit if kind == "visit" else tap
    weak = [make(f"w{n}", _at(start + offset), verified=False) for n, offset in enumerate(offsets)]
    expected = add_months(BASE + dt.timedelta(days=start + max(offsets)), 12)
    for order in itertools.permutations(weak):
        state, decisions = _run([tracked, *order])
        assert state.pension is not None
        assert state.pension.qualified_until == expected
        confirmed = [d.record for d in decisions if isinstance(d.record, PensionStatus)]
        assert [(c.decision, c.as_of) for c in confirmed] == [
            ("confirmed", BASE + dt.timedelta(days=start + max(offsets)))
        ]
