"""Calendar arithmetic: d + n months, local days, months."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from databus.rules.dates import (
    add_months,
    first_day,
    instant,
    local_day,
    month_from_text,
    month_index,
    month_text,
)

D = dt.date.fromisoformat


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        pytest.param("2024-02-29", 12, "2025-02-28", id="29-february-to-28-february"),
        pytest.param("2024-02-29", 48, "2028-02-29", id="29-february-to-29-february"),
        pytest.param("2025-01-31", 1, "2025-02-28", id="31-january-plus-a-month"),
        pytest.param("2025-03-15", 12, "2026-03-15", id="plain-year"),
        pytest.param("2025-12-10", 1, "2026-01-10", id="across-year-end"),
        pytest.param("1936-02-29", 12 * 90, "2026-02-28", id="90th-birthday-of-29-february"),
    ],
)
def test_add_months(start: str, months: int, expected: str) -> None:
    assert add_months(D(start), months) == D(expected)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param("2025-01-09T23:30:00+00:00", "2025-01-10", id="2330-utc-is-next-day"),
        pytest.param("2025-01-09T15:59:59+00:00", "2025-01-09", id="just-before-local-midnight"),
        pytest.param("2025-01-10T00:10:00+08:00", "2025-01-10", id="already-local"),
        pytest.param("2025-01-10T01:00:00+09:00", "2025-01-10", id="tokyo-offset"),
    ],
)
def test_local_day_is_taken_in_shanghai(moment: str, expected: str) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    assert local_day(dt.datetime.fromisoformat(moment), zone) == D(expected)


def test_months() -> None:
    index = month_index(D("2025-12-31"))
    assert month_text(index) == "2025-12"
    assert month_text(index + 1) == "2026-01"
    assert month_from_text("2026-01") == index + 1
    assert first_day(index + 1) == D("2026-01-01")


def test_instant_orders_across_offsets() -> None:
    early = dt.datetime.fromisoformat("2025-01-10T09:00:00+08:00")
    late = dt.datetime.fromisoformat("2025-01-10T02:00:00+00:00")
    assert instant(early) < instant(late)
    assert instant(dt.datetime.fromisoformat("1970-01-01T00:00:00.000001+00:00")) == 1
