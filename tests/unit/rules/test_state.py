"""The stored form of a person's state."""

from __future__ import annotations

import orjson
import pytest

from databus.errors import StateFormatError
from databus.rules import PersonState
from databus.rules.codec import FORMAT
from tests.unit.rules.builders import (
    PERSON,
    Step,
    alert,
    alert_withdrawn,
    certificate,
    face,
    household,
    pensioner,
    regranted,
    resumed_retracted,
    rid,
    run,
    summary,
    tap,
    tick,
    withdraw,
    withdraw_id,
)


def _rich_state() -> PersonState:
    state, _ = run(
        [
            pensioner("p1"),
            household("h1", "2020-01-01", born="1944-05-10"),
            tick("2024-06-01"),
            face("f1", "2025-01-10"),
            tap("t1", "2025-02-01"),
            tap("t2", "2025-02-03", verified=True),
            certificate("d1", "2025-02-06", "2025-02-04"),
            tap("t3", "2025-02-05"),
        ]
    )
    return state


def test_round_trip_keeps_everything() -> None:
    state = _rich_state()
    assert state.pension is not None
    assert state.death is not None
    assert state.residence is not None
    assert len(state.held) == 4
    assert PersonState.from_bytes(state.to_bytes()) == state


def test_empty_state_round_trips_and_is_small() -> None:
    empty = PersonState.empty(PERSON)
    data = empty.to_bytes()
    assert PersonState.from_bytes(data) == empty
    assert len(data) <= 66


def test_bytes_are_compact() -> None:
    state, _ = run([pensioner("p1")] + [tap(f"{i:032x}", f"2025-01-{i:02d}") for i in range(1, 31)])
    per_event = (len(state.to_bytes()) - len(run([pensioner("p1")])[0].to_bytes())) / 30
    assert per_event < 90


def test_readable_view_is_json_ready() -> None:
    view = _rich_state().to_json()
    orjson.dumps(view)
    assert view["death"] == {
        "date_of_death": "2025-02-04",
        "evidence": [
            {
                "id": "d1",
                "dataset": "health.death_certificate.v1",
                "occurred_at": "2025-02-06T10:00:00+08:00",
            }
        ],
        "dates_of_death": ["2025-02-04"],
        "alerts": [
            {
                "id": "t3",
                "dataset": "transport.transit_tap.v1",
                "occurred_at": "2025-02-05T10:00:00+08:00",
            }
        ],
    }
    assert view["residence"]["allowance_stop_reason"] == "deceased"
    assert view["residence"]["allowance_steps"] == [
        {"decision": "granted", "tier": "80-89", "effective_month": "2024-06", "tick": "2024-06-01"}
    ]
    assert (view["withdrawn"], view["epoch"]) == ([], 0)
    assert view["pension"]["final"] is True
    assert view["residence"]["allowance_tier"] == "80-89"
    assert view["residence"]["allowance_stopped_from"] == "2025-03"
    assert view["held_evidence"][1] == {
        "id": "t1",
        "dataset": "transport.transit_tap.v1",
        "occurred_at": "2025-02-01T10:00:00+08:00",
        "day": "2025-02-01",
        "weak": True,
    }


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[99]", id="unknown-format"),
        pytest.param(b'[2, "A", null, null, null, null]', id="truncated-format-2"),
        pytest.param(b'[1, "A"]', id="truncated"),
        pytest.param(b"{}", id="not-an-array"),
    ],
)
def test_unreadable_state_is_a_state_format_error(data: bytes) -> None:
    with pytest.raises(StateFormatError):
        PersonState.from_bytes(data)


def test_a_person_with_a_withdrawn_record_round_trips() -> None:
    death = certificate(rid("d1"), "2025-02-06", "2025-02-04")
    state, _ = run([pensioner("p1"), death, withdraw(death, "r1", "2025-02-10")])
    assert state.epoch == 1
    assert state.withdrawn
    assert PersonState.from_bytes(state.to_bytes()) == state
    assert orjson.loads(state.to_bytes())[0] == FORMAT == 2


# Written by the rules of format 1 (before retractions; git 4fb2f24) for: pensioner p1
# (benefit from 2024-06-01), household h1 (born 1944-05-10, in 370102), a tick on
# 2024-06-01 (80-89 granted), face scan f1 on 2025-01-10 (confirmed), death certificate
# d1 of 2025-02-06 (died 2025-02-04: suspended, allowance stopped from 2025-03), tap t3
# on 2025-02-05 (alert), funeral u1 of 2025-02-08 (died 2025-02-03).
FORMAT_1 = (
    b'[1,"ABCDEFGHIJKLMNOPQRSTUVWXYZ",[1716170400000000,"f64551fcd6f07823cb87971cfb914464",'
    b'"PA-1",true,739626,null,null,739261,true],[739286,[["8b53639f152c8fc6ef30802fde462ba0"'
    b',4,"2025-02-06T10:00:00+08:00"],["bb82030dbc2bcaba32a90bf2e207a84a",5,'
    b'"2025-02-08T10:00:00+08:00"]]],[1577844000000000,"33112ee14ee469c3eb52fe90322ec81d",'
    b'709796,true,"80-89","2025-03"],[739261,[["3f524cdc07a11d7c6220bdb049fe8dd4",0,'
    b'"2025-01-10T10:00:00+08:00"]]],[[739261,739287],[0,7],["3f524cdc07a11d7c6220bdb049fe8'
    b'dd4","cece8a9cecfb6c7e7ee4f3346d5e2544"],["2025-01-10T10:00:00+08:00",'
    b'"2025-02-05T10:00:00+08:00"]]]'
)
NAMED = [rid(name) for name in ("p1", "h1", "f1", "d1", "t3", "u1")]
"""The ids above (rid of each name), so that summaries show the names."""


def test_format_1_is_read_as_the_old_rules_left_it() -> None:
    state = PersonState.from_bytes(FORMAT_1)
    assert state.pension is not None
    assert (state.pension.final, state.pension.previous) == (True, None)
    assert state.death is not None
    assert [ref[0] for ref in state.death.refs] == [rid("d1"), rid("u1")]
    # Only the first record's date was kept: the funeral is given it too.
    assert [day.isoformat() for day in state.death.dates] == ["2025-02-04", "2025-02-04"]
    assert [ref[0] for ref in state.death.alerted] == [rid("t3")]
    residence = state.residence
    assert residence is not None
    assert (residence.in_province, residence.stop, residence.stopped_from) == (
        True,
        "deceased",
        "2025-03",
    )
    assert residence.steps == (("80-89", "2024-06", 0, True),)
    assert (state.withdrawn, state.epoch) == ((), 0)
    assert PersonState.from_bytes(state.to_bytes()) == state


def test_retractions_apply_to_a_state_of_format_1() -> None:
    """The old state's death, alert and allowance stop can all be withdrawn."""
    steps: list[Step] = [
        withdraw_id("health.death_certificate.v1", rid("d1"), "r1", "2025-02-10"),
        withdraw_id("civil.funeral.v1", rid("u1"), "r2", "2025-02-11"),
    ]
    _, decisions = run(steps, state=PersonState.from_bytes(FORMAT_1))
    assert [summary(d) for d in decisions] == [
        alert_withdrawn("2025-02-04", "d1", "t3"),
        alert("2025-02-04", "u1", "t3"),
        resumed_retracted("2025-02-11", "2026-01-10", "u1", "r2"),
        alert_withdrawn("2025-02-04", "u1", "t3"),
        regranted("80-89", "2025-03"),
    ]
