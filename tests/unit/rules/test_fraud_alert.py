"""Post-mortem activity (DOMAIN.md §1, derived.fraud_alert.v1): one row per case.

The pensioner's benefit started on 2024-06-01 (``qualified_until`` 2025-06-01); the
person died on 2025-03-01 unless a row says otherwise.
"""

from __future__ import annotations

import pytest

from databus.rules import on_event
from tests.unit.rules.builders import (
    POLICY,
    Step,
    Summary,
    alert,
    certificate,
    confirmed,
    deceased,
    face,
    funeral,
    pensioner,
    run,
    summaries,
    summary,
    tap,
    visit,
)

P = pensioner("p1")
DEATH = certificate("d1", "2025-03-03", "2025-03-01")
DIED = deceased("2025-03-01", "2025-06-01", "d1")

CASES = [
    pytest.param(
        [P, DEATH, tap("t1", "2025-03-05")],
        [DIED, alert("2025-03-01", "d1", "t1")],
        id="activity-after-death-record-alerts",
    ),
    pytest.param(
        [P, DEATH, face("f1", "2025-03-05"), visit("v1", "2025-03-06", verified=True)],
        [DIED, alert("2025-03-01", "d1", "f1"), alert("2025-03-01", "d1", "v1")],
        id="one-alert-per-event-strong-or-weak",
    ),
    pytest.param(
        [P, DEATH, tap("t1", "2025-03-01T23:00+08:00"), tap("t0", "2025-02-28")],
        [DIED],
        id="activity-on-or-before-the-day-of-death-is-no-alert",
    ),
    pytest.param(
        [P, DEATH, tap("t1", "2025-03-01T16:30:00+00:00")],
        [DIED, alert("2025-03-01", "d1", "t1")],
        id="activity-late-utc-is-next-local-day-after-death",
    ),
    pytest.param(
        [P, face("f1", "2025-03-05"), DEATH],
        [
            confirmed("2025-03-05", "2026-03-05", "f1"),
            deceased("2025-03-01", "2026-03-05", "d1"),
            alert("2025-03-01", "d1", "f1"),
        ],
        id="late-death-record-alerts-activity-seen-before",
    ),
    pytest.param(
        [P, tap("t1", "2025-03-02"), tap("t2", "2025-03-03"), tap("t0", "2025-01-20"), DEATH],
        [DIED, alert("2025-03-01", "d1", "t1"), alert("2025-03-01", "d1", "t2")],
        id="late-death-record-alerts-only-activity-after-death",
    ),
    pytest.param(
        [P, tap("t1", "2025-03-05"), tap("t2", "2025-07-01"), DEATH],
        [DIED, alert("2025-03-01", "d1", "t2")],
        id="activity-over-90-days-older-than-newest-is-no-longer-held",
    ),
    pytest.param(
        [P, tap("t1", "2025-03-05"), tap("t2", "2025-06-03"), DEATH],
        [DIED, alert("2025-03-01", "d1", "t1"), alert("2025-03-01", "d1", "t2")],
        id="activity-90-days-older-than-newest-is-still-held",
    ),
    pytest.param(
        [P, DEATH, funeral("d2", "2025-03-06", "2025-03-04"), tap("t1", "2025-03-02")],
        [DIED, alert("2025-03-01", "d1", "t1")],
        id="second-death-record-does-not-move-the-date-of-death",
    ),
    pytest.param(
        [P, DEATH, tap("t1", "2025-03-05"), tap("t1", "2025-03-05")],
        [DIED, alert("2025-03-01", "d1", "t1")],
        id="redelivered-activity-alerts-once",
    ),
    pytest.param(
        [DEATH, tap("t1", "2025-03-05"), P],
        [DIED, alert("2025-03-01", "d1", "t1")],
        id="pensioner-record-after-death-alerts-held-activity",
    ),
    pytest.param(
        [DEATH, tap("t1", "2025-03-05")],
        [],
        id="no-alert-for-a-person-without-pension",
    ),
    pytest.param(
        [pensioner("p0", "2024-01-01", status="terminated"), DEATH, tap("t1", "2025-03-05")],
        [],
        id="no-alert-for-a-terminated-pension",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), CASES)
def test_post_mortem_activity(steps: list[Step], expected: list[Summary]) -> None:
    assert summaries(steps) == expected


def test_alert_cites_both_events_in_full() -> None:
    _, decisions = run([P, DEATH, tap("t1", "2025-03-05T08:00:00+08:00")])
    record = decisions[-1].record
    assert summary(decisions[-1]) == alert("2025-03-01", "d1", "t1")
    assert record.model_dump(mode="json") == {
        "person_ref": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "kind": "post_mortem_activity",
        "date_of_death": "2025-03-01",
        "death_evidence": {
            "id": "d1",
            "dataset": "health.death_certificate.v1",
            "occurred_at": "2025-03-03T10:00:00+08:00",
        },
        "activity": {
            "id": "t1",
            "dataset": "transport.transit_tap.v1",
            "occurred_at": "2025-03-05T08:00:00+08:00",
        },
        "rule_version": "pension/1",
    }


def test_a_redelivered_activity_forgotten_before_tracking_raises_no_new_alert() -> None:
    """Found by the property 'applying the same event twice changes nothing' (CI,
    hypothesis): a face scan of 2 January is forgotten while the person is not yet a
    pensioner (more than 30 days before the newest held, of 2 February); the death of
    1 January and the pensioner record then alert only the held scan. Redelivered, the
    2 January scan must not raise an alert the first delivery never did."""
    steps = [
        face("fa", "2024-01-02T00:00:00+08:00"),
        face("fd", "2024-02-02T00:00:00+08:00"),
        certificate("dc", "2024-01-01", "2024-01-01"),
        pensioner("pp", "2024-01-01T00:00:00+08:00", benefit_start="2024-01-01"),
    ]
    state, decisions = run(steps)
    assert [summary(d) for d in decisions][1:] == [alert("2024-01-01", "dc", "fd")]
    again, more = on_event(state, steps[0], POLICY)
    assert more == []
    assert again.death == state.death
