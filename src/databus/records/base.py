"""Building blocks shared by every dataset's models.

Each source dataset is declared once as a *fields* model; its agency input form adds
``citizen_id`` (:class:`InputRecord`) and its bus form adds ``person_ref``
(:class:`BusRecord`), so the two forms cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Annotated, Any, ClassVar, Final, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from databus.identity import (
    PERSON_REF_LENGTH,
    birth_date_of,
    contains_id_number,
    normalise_citizen_id,
)


def _not_an_id_number(value: str) -> str:
    if contains_id_number(value):
        raise ValueError("looks like a resident ID number; only citizen_id may carry one")
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("contains a control character (such as NUL, a line break or ESC)")
    return value


Code = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, strip_whitespace=True),
    AfterValidator(_printable),
    AfterValidator(_not_an_id_number),
]
"""An identifier or code issued by an agency (visit id, hospital code, ...). A value that
looks like an ID number is refused, so that no raw ID can reach the bus by mistake, and
so is one with control characters, which break the files and terminals codes end up in."""

Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, strip_whitespace=True),
    AfterValidator(_printable),
    AfterValidator(_not_an_id_number),
]
"""Free text written by an officer (a reason): one line, no control characters, and no
ID number (the record's key already says whom it is about)."""

EARLIEST: Final = dt.date(1900, 1, 1)
"""No date or time on the bus is earlier: nobody alive was born before it, and nothing
the agencies record about residents happened before it."""
LATEST: Final = dt.date(2199, 12, 31)
"""No date or time on the bus is later: far enough for every deadline the rules compute
(a cycle of months, a hundredth birthday) to stay within the calendar."""
FUTURE_SKEW: Final = dt.timedelta(minutes=5)
"""How far ahead of "now" an ``occurred_at`` may be (clocks of agencies' hosts differ):
the publisher's clock when it checks a record, the broker's time of appending the
record when a worker does (records dated later are refused or dead-lettered, except on
a demo broker, see :mod:`databus.sandbox`)."""
_SLACK: Final = dt.timedelta(days=1)
"""A date compared with the date of an instant may differ by a day across time zones."""
_ANNOUNCED: Final = dt.timedelta(days=366)


def _bounded_day(value: dt.date) -> dt.date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


def _bounded_moment(value: dt.datetime) -> dt.datetime:
    # The local wall time first: converting 9999-12-31T23:59-14:00 to UTC overflows.
    if not EARLIEST <= value.date() <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


Day = Annotated[dt.date, AfterValidator(_bounded_day)]
"""A calendar date between :data:`EARLIEST` and :data:`LATEST`."""

Moment = Annotated[AwareDatetime, AfterValidator(_bounded_moment)]
"""An instant with its UTC offset, between :data:`EARLIEST` and :data:`LATEST`."""


def dated_after(record: Record, now: dt.datetime) -> bool:
    """Whether ``record`` says it happened later than ``now`` plus :data:`FUTURE_SKEW`."""
    return record.occurred_at > now + FUTURE_SKEW


def not_after_record(record: Record, day: dt.date | None, field: str) -> None:
    """A date the record reports (a death, a birth) cannot be after the record itself."""
    if day is not None and day > record.occurred_at.date() + _SLACK:
        raise record_error(field, "is after occurred_at: a record cannot report a later day")


def not_announced_beyond(record: Record, day: dt.date, field: str) -> None:
    """A date announced for the future (a benefit start) at most a year ahead."""
    if day > record.occurred_at.date() + _ANNOUNCED:
        raise record_error(field, "is more than a year after occurred_at")


Cents = Annotated[int, Field(ge=0, le=10**12)]
"""Money in integer cents; the upper bound keeps absurd numbers out."""

RegionCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
"""A 6-digit GB/T 2260 administrative region code."""

PersonRef = Annotated[
    str,
    StringConstraints(
        min_length=PERSON_REF_LENGTH, max_length=PERSON_REF_LENGTH, pattern=r"^[A-Z2-7]+$"
    ),
]
"""The keyed pseudonym of a resident (base32, 26 characters)."""


class _Today:
    """The local date, read again at most once a minute: it is needed for every record
    (a birth date must not be in the future) and ``date.today()`` is not free."""

    __slots__ = ("_date", "_until")

    def __init__(self) -> None:
        self._date = dt.date.min
        self._until = 0.0

    def __call__(self) -> dt.date:
        now = time.monotonic()
        if now >= self._until:
            self._date = dt.date.today()  # noqa: DTZ011 - the publisher's local date
            self._until = now + 60
        return self._date


_today = _Today()


def _valid_citizen_id(value: str) -> str:
    return normalise_citizen_id(value, today=_today())


CitizenId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=32),
    AfterValidator(_valid_citizen_id),
]
"""An 18-character resident ID number, normalised (lower-case x becomes X)."""


class Record(BaseModel):
    """Base of every record: closed (unknown fields are rejected) and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    occurred_at: Moment = Field(description="When it happened, RFC 3339 with offset.")


#: Days of an input record that cannot fall before the birth date inside its ID number.
_DAYS_AFTER_BIRTH = ("date_of_death", "benefit_start")


class InputRecord(Record):
    """What an agency hands to the publisher: carries the raw resident ID number."""

    citizen_id: CitizenId = Field(
        description="18-character resident ID number (GB 11643, ISO 7064 MOD 11-2 check).",
        json_schema_extra={"pattern": r"^[0-9]{17}[0-9Xx]$"},
    )

    _days_after_birth: ClassVar[tuple[str, ...]] = ()
    """The fields of :data:`_DAYS_AFTER_BIRTH` this dataset has (found once per class:
    ``getattr(self, name, None)`` on a missing field takes pydantic's slow path and
    doubled the cost of validating a record)."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._days_after_birth = tuple(n for n in _DAYS_AFTER_BIRTH if n in cls.model_fields)

    @model_validator(mode="after")
    def _not_before_birth(self) -> Self:
        """Nothing happens to a resident before their birth, the date inside the ID."""
        born = birth_date_of(self.citizen_id)
        if self.occurred_at.date() < born - _SLACK:
            raise record_error("occurred_at", "is before the date of birth inside citizen_id")
        for name in self._days_after_birth:
            day = getattr(self, name)
            if isinstance(day, dt.date) and day < born:
                raise record_error(name, "is before the date of birth inside citizen_id")
        return self


class BusRecord(Record):
    """What travels on the bus: the ID number is replaced by its pseudonym."""

    person_ref: PersonRef = Field(description="Keyed pseudonym of the resident.")


def record_error(field: str, message: str) -> PydanticCustomError:
    """An error raised by a model-level check that still names the field it is about.

    Pydantic gives model validators an empty location; the ``field`` in the context lets
    :mod:`databus.wire` report ``birth_date: ...`` instead of a nameless reason.
    """
    return PydanticCustomError("record_check", message, {"field": field})
