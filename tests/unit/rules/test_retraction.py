"""Retractions (docs/rules.md, "Retractions"): one row per case.

Unless a row says otherwise: the pensioner's benefit started on 2024-06-01
(``qualified_until`` 2025-06-01); the resident was born on 1944-05-10 (the 80-89 tier
from 2024-06, granted at the tick of 2024-06-01) and registered in 370102; the wrong
death certificate ``d1`` of 2025-03-03 dates the death 2025-03-01. Records that are
withdrawn carry ``ce_id``-shaped ids (``rid``); summaries show their names.
"""

from __future__ import annotations

import pytest

from databus.rules import Observation, PersonState, on_event
from tests.unit.rules.builders import (
    POLICY,
    Step,
    Summary,
    alert,
    alert_withdrawn,
    certificate,
    confirmed,
    deceased,
    face,
    funeral,
    granted,
    household,
    pensioner,
    regranted,
    reminder,
    resumed_retracted,
    rid,
    run,
    stopped,
    summaries,
    summary,
    suspended,
    tap,
    tick,
    tier_back,
    tier_changed,
    withdraw,
    withdraw_id,
)

P = pensioner(rid("p1"))
H = household(rid("h1"), "2020-01-01", born="1944-05-10")
BASE: list[Step] = [P, H, tick("2024-06-01")]
GRANTED = granted("80-89", "2024-06")
D1 = certificate(rid("d1"), "2025-03-03", "2025-03-01")
DIED = deceased("2025-03-01", "2025-06-01", "d1")
STOP = stopped("deceased", "80-89", "2025-04")


def dereg(name: str, when: str, died: str, region: str = "370102") -> Observation:
    return household(
        rid(name),
        when,
        "deregistered_death",
        born="1944-05-10",
        region=region,
        date_of_death=died,
    )


def moved(name: str, when: str, event: str) -> Observation:
    return household(rid(name), when, event, born="1944-05-10")


T1 = tap(rid("t1"), "2025-03-05")
U1 = funeral(rid("u1"), "2025-03-06", "2025-03-01")
X1 = dereg("x1", "2025-03-05", "2025-03-01")
XO = dereg("x1", "2025-03-05", "2025-03-01", region="110101")

DEATH_CASES = [
    pytest.param(
        [
            *BASE,
            face(rid("f1"), "2025-01-10"),
            D1,
            T1,
            withdraw(D1, "r1", "2025-03-10"),
            face(rid("f2"), "2025-06-10"),
            tick("2026-05-11"),
        ],
        [
            GRANTED,
            confirmed("2025-01-10", "2026-01-10", "f1"),
            deceased("2025-03-01", "2026-01-10", "d1"),
            STOP,
            alert("2025-03-01", "d1", "t1"),
            resumed_retracted("2025-03-10", "2026-01-10", "d1", "r1"),
            alert_withdrawn("2025-03-01", "d1", "t1"),
            regranted("80-89", "2025-04"),
            confirmed("2025-06-10", "2026-06-10", "f2"),
            reminder("2026-05-11", "2026-06-10"),
        ],
        id="issue-example-death-certificate-for-a-living-pensioner",
    ),
    pytest.param(
        [*BASE, D1, face(rid("f1"), "2025-03-05"), withdraw(D1, "r1", "2025-03-10")],
        [
            GRANTED,
            DIED,
            STOP,
            alert("2025-03-01", "d1", "f1"),
            resumed_retracted("2025-03-10", "2025-06-01", "d1", "r1"),
            confirmed("2025-03-05", "2026-03-05", "f1"),
            alert_withdrawn("2025-03-01", "d1", "f1"),
            regranted("80-89", "2025-04"),
        ],
        id="evidence-seen-while-the-death-stood-confirms-once-it-is-withdrawn",
    ),
    pytest.param(
        [P, tick("2025-06-02"), D1, withdraw(D1, "r1", "2025-06-10"), tick("2025-06-11")],
        [
            suspended("2025-06-02", "2025-06-01"),
            DIED,
            suspended("2025-06-02", "2025-06-01", "d1", "r1"),
        ],
        id="a-suspension-for-no-evidence-before-the-death-is-stated-again",
    ),
    pytest.param(
        [*BASE, U1, withdraw(U1, "r1", "2025-03-10")],
        [
            GRANTED,
            deceased("2025-03-01", "2025-06-01", "u1"),
            STOP,
            resumed_retracted("2025-03-10", "2025-06-01", "u1", "r1"),
            regranted("80-89", "2025-04"),
        ],
        id="funeral-record-withdrawn",
    ),
    pytest.param(
        [*BASE, X1, withdraw(X1, "r1", "2025-03-10"), tick("2025-05-02")],
        [
            GRANTED,
            deceased("2025-03-01", "2025-06-01", "x1"),
            STOP,
            resumed_retracted("2025-03-10", "2025-06-01", "x1", "r1"),
            regranted("80-89", "2025-04"),
            reminder("2025-05-02", "2025-06-01"),
        ],
        id="deregistration-withdrawn-restores-the-residence-it-ended",
    ),
    pytest.param(
        [*BASE, XO, withdraw(XO, "r1", "2025-03-10"), tick("2025-05-02")],
        [
            GRANTED,
            deceased("2025-03-01", "2025-06-01", "x1"),
            STOP,
            resumed_retracted("2025-03-10", "2025-06-01", "x1", "r1"),
            reminder("2025-05-02", "2025-06-01"),
        ],
        id="deregistration-outside-the-province-withdrawn-reads-as-a-move-out",
    ),
    pytest.param(
        [*BASE, X1, moved("h2", "2025-03-06", "updated"), withdraw(X1, "r1", "2025-03-10")],
        [
            GRANTED,
            deceased("2025-03-01", "2025-06-01", "x1"),
            STOP,
            resumed_retracted("2025-03-10", "2025-06-01", "x1", "r1"),
            regranted("80-89", "2025-04"),
        ],
        id="deregistration-no-longer-in-force-withdrawn-undoes-only-the-death",
    ),
    pytest.param(
        [*BASE, D1, U1, withdraw(U1, "r1", "2025-03-10"), T1],
        [GRANTED, DIED, STOP, alert("2025-03-01", "d1", "t1")],
        id="two-death-records-the-second-withdrawn-the-death-stands",
    ),
    pytest.param(
        [*BASE, D1, T1, U1, withdraw(D1, "r1", "2025-03-10")],
        [
            GRANTED,
            DIED,
            STOP,
            alert("2025-03-01", "d1", "t1"),
            alert_withdrawn("2025-03-01", "d1", "t1"),
            alert("2025-03-01", "u1", "t1"),
        ],
        id="two-death-records-the-first-withdrawn-alerts-cite-the-other",
    ),
    pytest.param(
        [
            *BASE,
            D1,
            T1,
            tap(rid("t2"), "2025-05-05"),
            funeral(rid("u1"), "2025-05-06", "2025-05-02"),
            withdraw(D1, "r1", "2025-05-10"),
        ],
        [
            GRANTED,
            DIED,
            STOP,
            alert("2025-03-01", "d1", "t1"),
            alert("2025-03-01", "d1", "t2"),
            deceased("2025-05-02", "2025-06-01", "u1", "r1"),
            alert_withdrawn("2025-03-01", "d1", "t1"),
            alert_withdrawn("2025-03-01", "d1", "t2"),
            alert("2025-05-02", "u1", "t2"),
            regranted("80-89", "2025-04"),
            stopped("deceased", "80-89", "2025-06"),
        ],
        id="the-record-fixing-the-date-withdrawn-a-later-date-stands",
    ),
    pytest.param(
        [
            *BASE,
            tap(rid("t0"), "2025-02-10"),
            D1,
            funeral(rid("u1"), "2025-03-06", "2025-01-20"),
            withdraw(D1, "r1", "2025-03-10"),
        ],
        [
            GRANTED,
            DIED,
            STOP,
            deceased("2025-01-20", "2025-06-01", "u1", "r1"),
            alert("2025-01-20", "u1", "t0"),
            stopped("deceased", "80-89", "2025-02"),
        ],
        id="the-record-fixing-the-date-withdrawn-an-earlier-date-stands",
    ),
    pytest.param(
        [*BASE, D1, T1, U1, withdraw(D1, "r1", "2025-03-10"), withdraw(U1, "r2", "2025-03-11")],
        [
            GRANTED,
            DIED,
            STOP,
            alert("2025-03-01", "d1", "t1"),
            alert_withdrawn("2025-03-01", "d1", "t1"),
            alert("2025-03-01", "u1", "t1"),
            resumed_retracted("2025-03-11", "2025-06-01", "u1", "r2"),
            alert_withdrawn("2025-03-01", "u1", "t1"),
            regranted("80-89", "2025-04"),
        ],
        id="two-death-records-both-withdrawn-the-death-is-undone",
    ),
    pytest.param(
        [*BASE, withdraw(D1, "r1", "2025-03-10"), D1, tick("2025-05-02")],
        [GRANTED, reminder("2025-05-02", "2025-06-01")],
        id="retraction-before-the-record-the-record-does-not-count",
    ),
    pytest.param(
        [*BASE, D1, withdraw(D1, "r1", "2025-03-10"), D1],
        [
            GRANTED,
            DIED,
            STOP,
            resumed_retracted("2025-03-10", "2025-06-01", "d1", "r1"),
            regranted("80-89", "2025-04"),
        ],
        id="withdrawn-record-delivered-again-does-not-count",
    ),
    pytest.param(
        [
            *BASE,
            D1,
            withdraw(D1, "r1", "2025-03-10"),
            withdraw(D1, "r1", "2025-03-10"),
            withdraw(D1, "r2", "2025-03-11"),
        ],
        [
            GRANTED,
            DIED,
            STOP,
            resumed_retracted("2025-03-10", "2025-06-01", "d1", "r1"),
            regranted("80-89", "2025-04"),
        ],
        id="retraction-applied-twice-or-repeated-decides-once",
    ),
    pytest.param(
        [*BASE, D1, withdraw_id("health.death_certificate.v1", rid("zz"), "r1", "2025-03-10")],
        [GRANTED, DIED, STOP],
        id="retraction-of-an-unknown-id-changes-nothing",
    ),
    pytest.param(
        [*BASE, X1, withdraw_id("health.death_certificate.v1", X1.id, "r1", "2025-03-10")],
        [GRANTED, deceased("2025-03-01", "2025-06-01", "x1"), STOP],
        id="health-cannot-withdraw-a-police-record-by-its-id",
    ),
    pytest.param(
        [*BASE, D1, withdraw_id("health.hospital_visit.v1", D1.id, "r1", "2025-03-10")],
        [GRANTED, DIED, STOP],
        id="retraction-naming-another-dataset-of-the-owner-withdraws-nothing",
    ),
    pytest.param(
        [
            H,
            tick("2024-06-01"),
            moved("h2", "2025-09-20", "moved_out"),
            c := certificate(rid("d1"), "2025-09-25", "2025-07-10"),
            withdraw(c, "r1", "2025-10-01"),
        ],
        [
            GRANTED,
            stopped("moved_out", "80-89", "2025-10"),
            stopped("deceased", "80-89", "2025-08"),
            regranted("80-89", "2025-08"),
            stopped("moved_out", "80-89", "2025-10"),
        ],
        id="death-withdrawn-after-it-stopped-before-a-move-out-the-move-out-stops-again",
    ),
    pytest.param(
        [
            H,
            tick("2024-06-01"),
            c := certificate(rid("d1"), "2025-09-20", "2025-09-15"),
            moved("h2", "2025-11-20", "moved_out"),
            withdraw(c, "r1", "2025-12-01"),
        ],
        [
            GRANTED,
            stopped("deceased", "80-89", "2025-10"),
            regranted("80-89", "2025-10"),
            stopped("moved_out", "80-89", "2025-12"),
        ],
        id="death-withdrawn-for-someone-who-moved-out-meanwhile-paid-until-the-move",
    ),
    pytest.param(
        [
            H,
            tick("2024-06-01"),
            moved("h2", "2025-08-05", "moved_out"),
            moved("h3", "2025-08-20", "moved_in"),
            tick("2025-08-21"),
            c := certificate(rid("d1"), "2025-09-01", "2025-07-10"),
            withdraw(c, "r1", "2025-09-05"),
        ],
        [
            GRANTED,
            stopped("moved_out", "80-89", "2025-09"),
            granted("80-89", "2025-09"),
            stopped("deceased", "80-89", "2025-08"),
            regranted("80-89", "2025-08"),
        ],
        id="death-withdrawn-after-a-move-out-and-back-without-a-break-paid-from-its-stop",
    ),
    pytest.param(
        [
            household(rid("h1"), "2020-01-01", born="1935-05-10"),
            tick("2025-05-01"),
            tick("2025-06-01"),
            c := certificate(rid("d1"), "2025-06-10", "2025-04-20"),
            withdraw(c, "r1", "2025-06-15"),
        ],
        [
            granted("80-89", "2025-05"),
            tier_changed("90-99", "2025-06"),
            stopped("deceased", "90-99", "2025-05"),
            regranted("80-89", "2025-05"),
            tier_back("90-99", "2025-06"),
        ],
        id="death-withdrawn-the-tiers-of-each-month-are-paid-again",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), DEATH_CASES)
def test_death_evidence_withdrawn(steps: list[Step], expected: list[Summary]) -> None:
    assert summaries(steps) == expected


F1 = face(rid("f1"), "2025-01-10")
W1 = tap(rid("w1"), "2025-01-01")

LIFE_CASES = [
    pytest.param(
        [P, F1, withdraw(F1, "r1", "2025-01-20"), tick("2025-12-11"), tick("2026-01-11")],
        [
            confirmed("2025-01-10", "2026-01-10", "f1"),
            reminder("2025-12-11", "2026-01-10"),
            suspended("2026-01-11", "2026-01-10"),
        ],
        id="confirmation-stands-and-qualified-until-is-not-lowered",
    ),
    pytest.param(
        [P, D1, T1, withdraw(T1, "r1", "2025-03-10")],
        [DIED, alert("2025-03-01", "d1", "t1"), alert_withdrawn("2025-03-01", "d1", "t1")],
        id="activity-withdrawn-its-alert-is-withdrawn",
    ),
    pytest.param(
        [
            P,
            W1,
            tap(rid("w2"), "2025-01-05"),
            withdraw(W1, "r1", "2025-01-06"),
            tap(rid("w3"), "2025-01-09"),
        ],
        [],
        id="weak-event-withdrawn-no-longer-counts-for-a-run",
    ),
    pytest.param(
        [
            P,
            W1,
            tap(rid("w2"), "2025-01-05"),
            withdraw(W1, "r1", "2025-01-06"),
            tap(rid("w3"), "2025-01-09"),
            tap(rid("w4"), "2025-01-12"),
        ],
        [confirmed("2025-01-12", "2026-01-12", "w2", "w3", "w4")],
        id="weak-run-without-the-withdrawn-event-still-counts",
    ),
    pytest.param(
        [F1, withdraw(F1, "r1", "2025-01-20"), P],
        [],
        id="withdrawn-evidence-is-not-kept-for-a-later-pensioner-record",
    ),
    pytest.param(
        [face(rid("f0"), "2024-12-20"), F1, withdraw(F1, "r1", "2025-01-20"), P],
        [confirmed("2024-12-20", "2025-12-20", "f0")],
        id="the-latest-evidence-still-held-takes-its-place",
    ),
    pytest.param(
        [P, withdraw(F1, "r1", "2025-01-20"), F1, tick("2025-06-02")],
        [suspended("2025-06-02", "2025-06-01")],
        id="evidence-after-its-own-retraction-does-not-count",
    ),
    pytest.param(
        [P, F1, withdraw(F1, "r1", "2025-01-20"), F1, tick("2026-01-11")],
        [confirmed("2025-01-10", "2026-01-10", "f1"), suspended("2026-01-11", "2026-01-10")],
        id="withdrawn-evidence-delivered-again-does-not-count",
    ),
    pytest.param(
        [P, withdraw_id("transport.transit_tap.v1", rid("zz"), "r1", "2025-01-20")],
        [],
        id="retraction-of-unknown-evidence-changes-nothing",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), LIFE_CASES)
def test_evidence_of_life_withdrawn(steps: list[Step], expected: list[Summary]) -> None:
    assert summaries(steps) == expected


P2 = pensioner(rid("p2"), "2024-07-01", account="PA-9")
PT = pensioner(rid("pt"), "2024-09-01", status="terminated")
HM = moved("h2", "2025-08-20", "moved_out")
HI = moved("h3", "2025-10-05", "moved_in")

REGISTER_CASES = [
    pytest.param(
        [P, P2, withdraw(P2, "r1", "2024-08-01"), tick("2025-05-02")],
        [reminder("2025-05-02", "2025-06-01")],
        id="pensioner-record-in-force-withdrawn-restores-the-one-before",
    ),
    pytest.param(
        [P, withdraw(P, "r1", "2024-08-01"), tick("2025-06-02"), F1],
        [],
        id="only-pensioner-record-withdrawn-not-tracked",
    ),
    pytest.param(
        [P, PT, F1, withdraw(PT, "r1", "2025-02-01"), tick("2026-01-11")],
        [confirmed("2025-01-10", "2026-01-10", "f1"), suspended("2026-01-11", "2026-01-10")],
        id="terminated-withdrawn-tracks-again-with-the-evidence-seen-meanwhile",
    ),
    pytest.param(
        [P, PT, D1, withdraw(PT, "r1", "2025-03-10")],
        [DIED],
        id="terminated-withdrawn-for-a-dead-pensioner-suspends-it",
    ),
    pytest.param(
        [P, P2, withdraw(P, "r1", "2024-08-01"), tick("2025-05-02")],
        [reminder("2025-05-02", "2025-06-01")],
        id="older-pensioner-record-withdrawn-changes-nothing",
    ),
    pytest.param(
        [
            P,
            P2,
            withdraw(P, "r1", "2024-08-01"),
            withdraw(P2, "r2", "2024-08-02"),
            tick("2025-06-02"),
        ],
        [],
        id="the-record-kept-before-withdrawn-then-the-one-in-force-not-tracked",
    ),
    pytest.param(
        [H, tick("2024-06-01"), HM, withdraw(HM, "r1", "2025-10-05"), tick("2025-10-06")],
        [GRANTED, stopped("moved_out", "80-89", "2025-09"), regranted("80-89", "2025-09")],
        id="move-out-withdrawn-the-allowance-is-granted-again-from-the-stop",
    ),
    pytest.param(
        [
            H,
            tick("2024-06-01"),
            HM,
            HI,
            tick("2025-10-06"),
            withdraw(HI, "r1", "2025-11-05"),
            tick("2025-11-06"),
        ],
        [
            GRANTED,
            stopped("moved_out", "80-89", "2025-09"),
            granted("80-89", "2025-10"),
            stopped("retracted", "80-89", "2025-10"),
        ],
        id="move-in-withdrawn-the-allowance-it-brought-is-stopped-from-its-grant",
    ),
    pytest.param(
        [H, tick("2024-06-01"), withdraw(H, "r1", "2025-11-05"), tick("2025-11-06")],
        [GRANTED, stopped("retracted", "80-89", "2024-06")],
        id="only-household-record-withdrawn-no-residence",
    ),
    pytest.param(
        [H, tick("2024-06-01"), HI, withdraw(HI, "r1", "2025-11-05"), tick("2025-11-06")],
        [GRANTED],
        id="record-withdrawn-restoring-a-residence-changes-no-allowance",
    ),
    pytest.param(
        [
            H,
            tick("2024-06-01"),
            u := household(rid("h4"), "2025-02-01", "updated", born="1934-05-10"),
            tick("2025-03-01"),
            withdraw(u, "r1", "2025-04-05"),
            tick("2025-04-06"),
        ],
        [GRANTED, tier_changed("90-99", "2025-03")],
        id="corrected-birth-date-withdrawn-does-not-lower-the-tier",
    ),
    pytest.param(
        [H, tick("2024-06-01"), HM, withdraw(H, "r1", "2025-10-05"), tick("2025-10-06")],
        [GRANTED, stopped("moved_out", "80-89", "2025-09")],
        id="older-household-record-withdrawn-changes-nothing",
    ),
    pytest.param(
        [
            H,
            tick("2024-06-01"),
            HM,
            h3 := moved("h3", "2025-08-25", "moved_in"),
            withdraw(h3, "r1", "2025-08-30"),
            certificate(rid("d1"), "2025-10-03", "2025-10-01"),
        ],
        [GRANTED, stopped("moved_out", "80-89", "2025-09")],
        id="move-in-withdrawn-the-move-out-it-restores-still-stops-first",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), REGISTER_CASES)
def test_register_record_withdrawn(steps: list[Step], expected: list[Summary]) -> None:
    assert summaries(steps) == expected


def test_a_retraction_decides_with_the_withdrawn_record_and_itself_as_evidence() -> None:
    retraction = withdraw(D1, "r1", "2025-03-10T09:00:00+08:00")
    _, decisions = run([P, D1, retraction])
    record = decisions[-1].record.model_dump(mode="json")
    assert record == {
        "person_ref": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "pensioner_account": "PA-1",
        "decision": "resumed",
        "reason": "retracted",
        "as_of": "2025-03-10",
        "qualified_until": "2025-06-01",
        "evidence": [
            {
                "id": D1.id,
                "dataset": "health.death_certificate.v1",
                "occurred_at": "2025-03-03T10:00:00+08:00",
            },
            {
                "id": retraction.id,
                "dataset": "health.retraction.v1",
                "occurred_at": "2025-03-10T09:00:00+08:00",
            },
        ],
        "date_of_death": None,
        "rule_version": "pension/1",
    }


def test_a_withdrawn_alert_cites_what_the_alert_cited() -> None:
    _, decisions = run([P, D1, T1, withdraw(T1, "r1", "2025-03-10")])
    raised, withdrawn = (d.record.model_dump(mode="json") for d in decisions[-2:])
    assert withdrawn == {**raised, "kind": "withdrawn"}
    assert decisions[-1].id != decisions[-2].id


def test_a_real_death_after_a_withdrawn_one_gets_new_decision_ids() -> None:
    """Consumers drop decisions whose id they have seen: the second suspension for a
    death must not have the id of the first, or the pension would stay paid."""
    later = certificate(rid("d2"), "2025-09-03", "2025-09-01")
    _, first = run([*BASE, D1])
    _, decisions = run([*BASE, D1, withdraw(D1, "r1", "2025-03-10"), later])
    assert [summary(d) for d in decisions[-2:]] == [
        deceased("2025-09-01", "2025-06-01", "d2"),
        stopped("deceased", "80-89", "2025-10"),
    ]
    assert decisions[1].id == first[1].id  # ids before any retraction are unchanged
    assert len({d.id for d in decisions}) == len(decisions)


@pytest.mark.parametrize(
    ("before", "withdrawn"),
    [
        pytest.param([*BASE, D1], D1, id="death-certificate"),
        pytest.param([*BASE, D1, T1, U1], D1, id="the-record-fixing-the-date"),
        pytest.param([*BASE, X1], X1, id="deregistration"),
        pytest.param([P, D1, T1], T1, id="activity"),
        pytest.param([P, P2], P2, id="pensioner-record"),
        pytest.param([H, tick("2024-06-01"), HM], HM, id="move-out"),
        pytest.param([*BASE], D1, id="unknown-record"),
    ],
)
def test_a_retraction_applied_twice_changes_nothing(
    before: list[Step], withdrawn: Observation
) -> None:
    state, _ = run(before)
    retraction = withdraw(withdrawn, "r1", "2025-12-01")
    once, _ = on_event(state, retraction, POLICY)
    assert once != state  # the withdrawn id is kept, at least
    twice, again = on_event(once, retraction, POLICY)
    assert again == []
    assert twice == once
    assert PersonState.from_bytes(twice.to_bytes()) == once
