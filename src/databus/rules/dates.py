"""Calendar arithmetic of the rules: local days, months, ``d + n months``.

Months are handled as an index (``year * 12 + month - 1``) so that "the month after" is
``+ 1``; they are written ``YYYY-MM`` only at the edges (decisions, stored state).
"""

from __future__ import annotations

import datetime as dt
from calendar import isleap
from zoneinfo import ZoneInfo

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def local_day(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    """``day(e)``: the local date of an aware instant in the policy's time zone."""
    return moment.astimezone(zone).date()


def instant(moment: dt.datetime) -> int:
    """An aware instant as microseconds since the epoch (exact, orders across offsets)."""
    return (moment - _EPOCH) // _MICROSECOND


def moment_of(at: int) -> dt.datetime:
    """The aware instant (UTC) of :func:`instant`'s microseconds."""
    return _EPOCH + dt.timedelta(microseconds=at)


def day_of_time(time: str, zone: ZoneInfo) -> dt.date:
    """The local day of an RFC 3339 ``occurred_at`` kept in a reference."""
    return dt.datetime.fromisoformat(time).astimezone(zone).date()


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later; a day the month lacks becomes its last (29 Feb -> 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month0 = divmod(index, 12)
    if day.day <= 28:  # noqa: PLR2004 - every month has 28 days
        return dt.date(year, month0 + 1, day.day)
    last = _MONTH_DAYS[month0] + (month0 == 1 and isleap(year))
    return dt.date(year, month0 + 1, min(day.day, last))


def month_index(day: dt.date) -> int:
    """``month(d)`` as an index that counts months."""
    return day.year * 12 + day.month - 1


def month_text(index: int) -> str:
    """A month index written ``YYYY-MM``."""
    year, month0 = divmod(index, 12)
    return f"{year:04d}-{month0 + 1:02d}"


def month_from_text(text: str) -> int:
    """The index of a ``YYYY-MM`` month."""
    return int(text[:4]) * 12 + int(text[5:7]) - 1


def first_day(index: int) -> dt.date:
    """The first day of a month index."""
    year, month0 = divmod(index, 12)
    return dt.date(year, month0 + 1, 1)
