"""The entry points: redelivery, routing, decision ids and records, next_due."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

import databus.rules
from databus import records as r
from databus.rules import (
    RULE_INPUTS,
    Observation,
    PersonState,
    Policy,
    Tier,
    next_due,
    on_event,
    on_tick,
)
from tests.unit.rules.builders import (
    PERSON,
    POLICY,
    Step,
    certificate,
    day,
    exam,
    face,
    funeral,
    household,
    pensioner,
    run,
    summary,
    tap,
    tick,
    visit,
)

P = pensioner("p1")
H = household("h1", "2020-01-01")


@pytest.mark.parametrize(
    ("before", "event"),
    [
        pytest.param([P], face("f1", "2025-01-10"), id="face-authentication"),
        pytest.param([P], exam("e1", "2025-01-10"), id="physical-exam"),
        pytest.param([P], visit("v1", "2025-01-10", verified=True), id="verified-visit"),
        pytest.param(
            [P, tap("t1", "2025-01-01"), tap("t2", "2025-01-05")],
            tap("t3", "2025-01-09"),
            id="weak-tap-completing-a-run",
        ),
        pytest.param(
            [P, certificate("d1", "2025-03-03", "2025-03-01")],
            tap("t1", "2025-03-05"),
            id="post-mortem-activity",
        ),
        pytest.param([P], certificate("d1", "2025-03-03", "2025-03-01"), id="death-certificate"),
        pytest.param(
            [P, certificate("d1", "2025-03-03", "2025-03-01")],
            funeral("d2", "2025-03-04", "2025-03-02"),
            id="second-death-record",
        ),
        pytest.param([face("f1", "2025-01-10")], P, id="pensioner-record"),
        pytest.param([], H, id="household-record"),
        pytest.param(
            [H, tick("2025-06-01")],
            household("h2", "2025-08-20", "moved_out"),
            id="moved-out",
        ),
        pytest.param(
            [face("f1", "2025-01-10")],
            face("f0", "2024-01-10"),
            id="untracked-person-evidence",
        ),
    ],
)
def test_same_event_applied_twice_changes_nothing(before: list[Step], event: Observation) -> None:
    state, _ = run(before)
    once, _decisions = on_event(state, event, POLICY)
    twice, again = on_event(once, event, POLICY)
    assert again == []
    assert twice == once
    assert PersonState.from_bytes(twice.to_bytes()) == once


def test_redelivered_batch_changes_nothing() -> None:
    batch = [P, face("f1", "2025-01-10"), tap("t1", "2025-01-11"), H, tap("t2", "2025-01-12")]
    state, decisions = run(batch)
    assert decisions
    again, more = run(batch, state=state)
    assert more == []
    assert again == state


def test_datasets_the_rules_do_not_read_are_ignored() -> None:
    tick_event = Observation("x", "system.clock.v1", r.ClockTick(as_of=dt.date(2025, 1, 1)))
    state = PersonState.empty(PERSON)
    assert on_event(state, tick_event, POLICY) == (state, [])
    assert "system.clock.v1" not in RULE_INPUTS
    assert {
        "hrss.pensioner.v1",
        "hrss.face_authentication.v1",
        "health.hospital_visit.v1",
        "health.physical_exam.v1",
        "health.death_certificate.v1",
        "transport.transit_tap.v1",
        "civil.funeral.v1",
        "police.household.v1",
        "hrss.retraction.v1",
        "health.retraction.v1",
        "transport.retraction.v1",
        "civil.retraction.v1",
        "police.retraction.v1",
    } == RULE_INPUTS


def test_a_record_of_the_wrong_type_is_a_programming_error() -> None:
    wrong = Observation("x", "health.hospital_visit.v1", face("f1", "2025-01-10").record)
    with pytest.raises(TypeError, match=r"health\.hospital_visit\.v1 event x carries a Face"):
        on_event(PersonState.empty(PERSON), wrong, POLICY)


def test_confirmed_record_in_full() -> None:
    _, decisions = run([P, face("f1", "2025-01-10T09:00:00+08:00")])
    assert decisions[0].dataset == "derived.pension_status.v1"
    assert decisions[0].record.model_dump(mode="json") == {
        "person_ref": PERSON,
        "pensioner_account": "PA-1",
        "decision": "confirmed",
        "reason": "evidence",
        "as_of": "2025-01-10",
        "qualified_until": "2026-01-10",
        "evidence": [
            {
                "id": "f1",
                "dataset": "hrss.face_authentication.v1",
                "occurred_at": "2025-01-10T09:00:00+08:00",
            }
        ],
        "date_of_death": None,
        "rule_version": "pension/1",
    }


def test_decisions_name_the_latest_account() -> None:
    steps: list[Step] = [P, pensioner("p2", "2024-07-01", account="PA-9"), face("f1", "2025-01-10")]
    _, decisions = run(steps)
    assert [d.record.model_dump()["pensioner_account"] for d in decisions] == ["PA-9"]


def test_decision_ids_are_deterministic_and_distinct() -> None:
    steps: list[Step] = [
        P,
        face("f1", "2025-01-10"),
        tick("2025-12-20"),
        tick("2026-01-11"),
        face("f2", "2026-01-20"),
        H,
        tick("2026-01-21"),
        certificate("d1", "2026-02-02", "2026-02-01"),
        tap("t1", "2026-02-03"),
    ]
    _, first = run(steps)
    _, second = run(steps)
    assert [d.id for d in first] == [d.id for d in second]
    assert len({d.id for d in first}) == len(first) == 8
    assert all(re.fullmatch(r"[0-9a-f]{32}", d.id) for d in first)


def test_decision_id_does_not_depend_on_the_tick_that_found_it() -> None:
    _, early = run([P, tick("2025-05-02")])
    _, late = run([P, tick("2025-05-30")])
    assert early[0].id == late[0].id


def test_deceased_id_is_the_same_in_either_order() -> None:
    death = certificate("d1", "2025-03-03", "2025-03-01")
    _, death_first = run([death, P])
    _, pension_first = run([P, death])
    assert [summary(d) for d in death_first] == [summary(d) for d in pension_first]
    assert death_first[0].id == pension_first[0].id


def test_two_grants_in_one_month_have_different_ids() -> None:
    steps: list[Step] = [
        H,
        tick("2025-06-01"),
        household("h2", "2025-08-05", "moved_out"),
        household("h3", "2025-08-10", "moved_in"),
        tick("2025-08-11"),
        household("h4", "2025-08-15", "moved_out"),
        household("h5", "2025-08-20", "moved_in"),
        tick("2025-08-21"),
    ]
    _, decisions = run(steps)
    assert [summary(d)[0] for d in decisions] == [
        "granted",
        "stopped",
        "granted",
        "stopped",
        "granted",
    ]
    assert len({d.id for d in decisions}) == len(decisions)


def test_the_policy_sets_versions_amounts_and_windows() -> None:
    tiers = (Tier("80-89", 80, 111), Tier("90-99", 90, 222), Tier("100+", 100, 333))
    policy = Policy(
        pension_rule_version="pension/2",
        allowance_rule_version="allowance/2",
        reminder_days=10,
        tiers=tiers,
        time_zone="UTC",
    )
    steps: list[Step] = [P, tick("2025-05-21"), tick("2025-05-22"), H, tick("2025-06-01")]
    _, decisions = run(steps, policy)
    assert [summary(d) for d in decisions] == [
        ("reminder", "no_evidence", day("2025-05-22"), day("2025-06-01"), (), None),
        ("granted", "age", "80-89", 111, "2025-06"),
    ]
    assert [d.record.rule_version for d in decisions] == ["pension/2", "allowance/2"]
    _, utc = run([P, face("f1", "2025-01-09T23:30:00+00:00")], policy)
    assert summary(utc[0])[2] == day("2025-01-09")


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param([], None, id="nobody"),
        pytest.param([P], day("2025-05-02"), id="pensioner-reminder-window-start"),
        pytest.param([P, tick("2025-05-02")], day("2025-06-02"), id="reminded-day-after-deadline"),
        pytest.param([P, tick("2025-06-02")], None, id="suspended-waits-for-evidence"),
        pytest.param(
            [P, pensioner("p2", "2024-07-01", status="terminated")], None, id="terminated"
        ),
        pytest.param([P, certificate("d1", "2025-03-03", "2025-03-01")], None, id="dead"),
        pytest.param([H], day("2025-06-01"), id="resident-first-tier"),
        pytest.param([H, tick("2025-06-01")], day("2035-06-01"), id="resident-next-tier"),
        pytest.param(
            [household("h1", "2020-01-01", born="1920-01-01"), tick("2025-01-01")],
            None,
            id="highest-tier-reached",
        ),
        pytest.param([H, household("h2", "2021-01-01", "moved_out")], None, id="not-resident"),
        pytest.param([P, H], day("2025-05-02"), id="earliest-of-pension-and-allowance"),
        pytest.param([P, H, tick("2025-05-02")], day("2025-06-01"), id="allowance-first"),
    ],
)
def test_next_due(steps: list[Step], expected: dt.date | None) -> None:
    state, _ = run(steps)
    assert next_due(state, POLICY) == expected


def test_a_tick_before_next_due_decides_nothing_and_one_on_it_decides() -> None:
    state, _ = run([P])
    due = next_due(state, POLICY)
    assert due is not None
    assert on_tick(state, due - dt.timedelta(days=1), POLICY) == (state, [])
    assert on_tick(state, due, POLICY)[1]


def test_state_is_never_modified_in_place() -> None:
    state, _ = run([P, H, face("f1", "2025-01-10")])
    copy = dataclasses.replace(state)
    on_event(state, tap("t1", "2025-02-01"), POLICY)
    on_tick(state, day("2026-02-01"), POLICY)
    assert state == copy


def test_rules_read_no_clock_and_no_runtime() -> None:
    source = Path(databus.rules.__file__).parent
    text = "\n".join(path.read_text() for path in source.glob("*.py"))
    for forbidden in (".now(", ".today(", "utcnow", "time.time", "import faust", "aiokafka"):
        assert forbidden not in text, forbidden
