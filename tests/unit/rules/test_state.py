"""The stored form of a person's state."""

from __future__ import annotations

import orjson
import pytest

from databus.rules import PersonState, StateFormatError
from tests.unit.rules.builders import (
    PERSON,
    certificate,
    face,
    household,
    pensioner,
    run,
    tap,
    tick,
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
    }
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
        pytest.param(b'[1, "A"]', id="truncated"),
        pytest.param(b"{}", id="not-an-array"),
    ],
)
def test_unreadable_state_is_a_state_format_error(data: bytes) -> None:
    with pytest.raises(StateFormatError):
        PersonState.from_bytes(data)
