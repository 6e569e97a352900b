"""Invariants of the pure rules over random histories of one person (hypothesis).

What a crash-prone, at-least-once runtime relies on: a redelivered event, retraction or
tick changes nothing a consumer can see (same state, only decision ids it has already
seen), and where the rules say the arrival order does not matter, it does not. What a
pensioner relies on: death ends confirmations and allowances, deadlines never drop, and
a wrong record or a wrong tick can be taken back (docs/rules.md, "Retractions" and
"Clock resets"). The histories mix retractions of their own records, or of records
never published, anywhere (also before the record they withdraw).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from databus.records import ElderlyAllowance, FraudAlert, PensionStatus
from databus.rules import Decision, Observation, PersonState, on_event, on_tick
from databus.rules.dates import add_months, month_index, month_text
from tests.unit.rules.builders import (
    PERSON,
    POLICY,
    SHANGHAI,
    Reset,
    Step,
    Tick,
    apply,
    certificate,
    exam,
    face,
    funeral,
    household,
    pensioner,
    rid,
    tap,
    visit,
    withdraw,
    withdraw_id,
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


def _retraction(target: Observation | None, name: str, late: int) -> Observation:
    """A retraction of ``target`` dated ``late`` days after it (or of a record nobody
    ever published, when ``target`` is None)."""
    if target is None:
        return withdraw_id("health.hospital_visit.v1", rid(f"{name}-none"), name, _at(0))
    when = target.record.occurred_at + dt.timedelta(days=late)  # type: ignore[attr-defined]
    return withdraw(target, name, when)


@st.composite
def histories(
    draw: st.DrawFn, span: int = 800, size: int = 40, *, retractions: int = 3
) -> list[Step]:
    """Any events and ticks of one person in any order; most histories start with a
    pensioner or household record so that every rule has something to decide. Up to
    ``retractions`` of the records (or of unknown ids) are inserted anywhere, also
    before the record they withdraw (topics are read at different speeds)."""
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
        steps.append(made if isinstance(made, Tick) else made(rid(f"e{index}")))
    records = [step for step in steps if isinstance(step, Observation)]
    for number in range(draw(st.integers(0, retractions))):
        target = draw(st.none() | st.sampled_from(records)) if records else None
        late = draw(st.integers(0, 90))
        at = draw(st.integers(0, len(steps)))
        steps.insert(at, _retraction(target, f"r{number}", late))
    return steps


def _is_retraction(step: Step) -> bool:
    return isinstance(step, Observation) and step.dataset.endswith(".retraction.v1")


def _apply(state: PersonState, step: Step) -> tuple[PersonState, list[Decision]]:
    return apply(state, step, POLICY)


def _run(
    steps: Sequence[Step], state: PersonState | None = None
) -> tuple[PersonState, list[Decision]]:
    state = PersonState.empty(PERSON) if state is None else state
    decisions: list[Decision] = []
    for step in steps:
        state, more = _apply(state, step)
        decisions += more
    return state, decisions


@PROPERTIES
@given(histories())
def test_nothing_is_confirmed_after_a_death_is_known(steps: list[Step]) -> None:
    """Once a death record is in, the only pension decision left is the suspension for
    the death; no allowance is granted or raised; activity only raises alerts. (Only a
    retraction of the death's records reinstates anything.)"""
    state = PersonState.empty(PERSON)
    for step in steps:
        known_dead = state.death is not None
        state, decisions = _apply(state, step)
        if not known_dead or _is_retraction(step):
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
        assert not in_force or in_force[-1].decision == "stopped", (month, allowances)


@PROPERTIES
@given(histories(), st.data())
def test_applying_the_same_event_twice_changes_nothing(
    steps: list[Step], data: st.DataObject
) -> None:
    """A redelivery, right away or later, leaves the state as it was and decides nothing
    a consumer has not seen (by id) already. Later, one thing may change: an older
    register record delivered again may become the one kept before the record in force,
    when the one kept was withdrawn (one is kept, not the whole history)."""
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
        assert _in_force(again) == _in_force(state)


def _in_force(state: PersonState) -> tuple[object, ...]:
    """The state without the register records kept before the ones in force."""
    pension, residence = state.pension, state.residence
    return (
        None if pension is None else replace(pension, previous=None),
        state.death,
        None if residence is None else replace(residence, previous=None),
    )


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
                case "confirmed" | "resumed", "evidence":
                    assert record.qualified_until == add_months(record.as_of, 12)
                    assert record.evidence
                case "resumed", "retracted":  # a reset cites nothing, a retraction itself
                    cited = [ref.dataset for ref in record.evidence]
                    assert not cited or cited[-1].endswith(".retraction.v1")


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


# Retractions and resets.


@PROPERTIES
@given(histories(retractions=4))
def test_a_retraction_applied_twice_changes_nothing(steps: list[Step]) -> None:
    """Right away or after anything else: the second time, no decision and no change."""
    state = PersonState.empty(PERSON)
    retractions: list[Observation] = []
    for step in steps:
        state, _ = _apply(state, step)
        if _is_retraction(step):
            assert isinstance(step, Observation)
            retractions.append(step)
            again, more = on_event(state, step, POLICY)
            assert (again, more) == (state, [])
    for retraction in retractions:
        again, more = on_event(state, retraction, POLICY)
        assert (again, more) == (state, [])


Views = dict[str, object]


def _views(decisions: Sequence[Decision]) -> Views:
    """What a consumer acts on, applying the decisions in order: the pension's status
    (paid, suspended for lack of evidence, suspended for a death), the fraud alerts in
    force (by activity) and the allowance tier paid in each month (or none)."""
    status = "paid"
    alerts: set[str] = set()
    allowances: list[ElderlyAllowance] = []
    for decision in decisions:
        record = decision.record
        if isinstance(record, PensionStatus):
            status = record.reason if record.decision == "suspended" else "paid"
        elif isinstance(record, FraudAlert):
            if record.kind == "withdrawn":
                alerts.discard(record.activity.id)
            else:
                alerts.add(record.activity.id)
        else:
            allowances.append(record)
    paid: dict[str, str | None] = {}
    for month in sorted({a.effective_month for a in allowances}):
        in_force = [a for a in allowances if a.effective_month <= month]
        paid[month] = None if in_force[-1].decision == "stopped" else in_force[-1].tier
    return {"pension": status, "alerts": alerts, "allowance": _months(paid)}


def _months(paid: dict[str, str | None]) -> list[tuple[str, str | None]]:
    """Month by month from the first month paid on: the tier paid (None: nothing), as
    runs of equal months."""
    runs: list[tuple[str, str | None]] = []
    for month, tier in sorted(paid.items()):
        if (runs or tier is not None) and (not runs or runs[-1][1] != tier):
            runs.append((month, tier))
    return runs


#: Which views a record and its retraction leave as if the record had never come.
#: Evidence of life: what it confirmed stands (qualified_until is never lowered), and
#: the events it pushed out of the held log do not come back (so an alert for them is
#: missed, never added). A pensioner record: its benefit start may have raised
#: qualified_until, and alerts it let raise stand (a dead person's card in use).
#: A deregistration: the residence it ended comes back as the deregistration itself,
#: read as an update at its region (region and birth date may differ).
_EXACT: dict[str, tuple[str, ...]] = {
    "death": ("pension", "alerts", "allowance"),
    "deregistration": ("pension", "alerts"),
    "household": ("pension", "alerts", "allowance"),
    "pensioner": ("allowance",),
    "life": ("allowance",),
}


def _kind(record: Observation) -> str:
    dataset = record.dataset
    if dataset in ("health.death_certificate.v1", "civil.funeral.v1"):
        return "death"
    if dataset == "police.household.v1":
        event = record.record.event  # type: ignore[attr-defined]
        return "deregistration" if event == "deregistered_death" else "household"
    return "pensioner" if dataset == "hrss.pensioner.v1" else "life"


@st.composite
def settled(draw: st.DrawFn, size: int = 30, retractions: int = 0) -> list[Step]:
    """A tracked pensioner aged 80 to 100, a resident granted the allowance at the
    first tick; then any history. So that most records matter to some rule."""
    start = _date(draw(st.integers(-360, 0)))
    born = (BASE - dt.timedelta(days=draw(st.integers(80 * 365, 100 * 365)))).isoformat()
    prefix: list[Step] = [
        pensioner(rid("roster"), _at(0), benefit_start=start),
        household(rid("home"), _at(0), born=born),
        Tick(BASE + dt.timedelta(days=1)),
    ]
    return [*prefix, *draw(histories(size=size, retractions=retractions))]


_RECORDS = {
    "life": life_events,
    "death": death_records,
    "pensioner": pensioner_records,
    "household": household_records,
}


@PROPERTIES
@given(
    settled(),
    st.sampled_from(sorted(_RECORDS)).flatmap(lambda kind: _RECORDS[kind](st.integers(0, 800))),
    st.data(),
)
def test_a_record_and_its_retraction_leave_what_consumers_act_on_as_if_it_never_came(
    steps: list[Step], make: Make, data: st.DataObject
) -> None:
    """A wrong record, withdrawn by its agency right after it arrived, anywhere in a
    history: at the end, consumers act on what they would have without it (the views
    of :data:`_EXACT` for its kind), and for evidence of life never on more alerts."""
    record = make(rid("wrong"))
    at = data.draw(st.integers(3, len(steps)), label="arrives after step")
    retraction = withdraw(record, "takeback", record.record.occurred_at)  # type: ignore[attr-defined]
    plain = _run(steps)[1]
    taken_back = _run([*steps[:at], record, retraction, *steps[at:]])[1]
    without, with_it = _views(plain), _views(taken_back)
    kind = _kind(record)
    event(f"{kind}: {'decided something' if len(taken_back) > len(plain) else 'no decision'}")
    for view in _EXACT[kind]:
        assert with_it[view] == without[view], view
    if kind == "life":
        assert with_it["alerts"] <= without["alerts"]  # type: ignore[operator]


@st.composite
def late_ticks(draw: st.DrawFn, after: int) -> list[Tick]:
    """Ticks for days after ``after`` (days from BASE), in order, reaching far ahead."""
    offsets = draw(st.lists(st.integers(1, 40_000), min_size=1, max_size=6, unique=True))
    return [Tick(BASE + dt.timedelta(days=after + offset)) for offset in sorted(offsets)]


@PROPERTIES
@given(settled(size=8, retractions=1), late_ticks(800))
def test_a_reset_then_the_same_ticks_again_ends_as_ticking_once(
    history: list[Step], ticks: list[Tick]
) -> None:
    """Ticks beyond day D (the bus is at D: every tick of the history is on or before
    it), a reset to D, then the same ticks again: the pension's status and deadline,
    the allowance's tier and what a consumer pays are those of ticking once."""
    last = BASE + dt.timedelta(days=800)
    steps = [s for s in history if not isinstance(s, Tick) or s.as_of <= last]
    reset_day = Reset(last)
    once_state, once = _run([*steps, *ticks])
    undone = _apply(once_state, reset_day)[1]
    event(f"the reset decided {min(len(undone), 2)}+ things")
    twice_state, twice = _run([*steps, *ticks, reset_day, *ticks])

    def status(state: PersonState) -> tuple[object, ...]:
        pension, residence = state.pension, state.residence
        return (
            None if pension is None else (pension.qualified_until, pension.suspended_on),
            None if residence is None else (residence.tier, residence.stopped_from),
        )

    assert status(twice_state) == status(once_state)
    assert _views(twice) == _views(once)
    ids = [d.id for d in twice]
    assert len(ids) == len(set(ids))
