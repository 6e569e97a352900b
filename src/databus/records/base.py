"""Building blocks shared by every dataset's models.

Each source dataset is declared once as a *fields* model; its agency input form adds
``citizen_id`` (:class:`InputRecord`) and its bus form adds ``person_ref``
(:class:`BusRecord`), so the two forms cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from databus.identity import ID_LIKE, PERSON_REF_LENGTH, normalise_citizen_id


def _not_an_id_number(value: str) -> str:
    if ID_LIKE.search(value):
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
    occurred_at: AwareDatetime = Field(description="When it happened, RFC 3339 with offset.")


class InputRecord(Record):
    """What an agency hands to the publisher: carries the raw resident ID number."""

    citizen_id: CitizenId = Field(
        description="18-character resident ID number (GB 11643, ISO 7064 MOD 11-2 check).",
        json_schema_extra={"pattern": r"^[0-9]{17}[0-9Xx]$"},
    )


class BusRecord(Record):
    """What travels on the bus: the ID number is replaced by its pseudonym."""

    person_ref: PersonRef = Field(description="Keyed pseudonym of the resident.")


def record_error(field: str, message: str) -> PydanticCustomError:
    """An error raised by a model-level check that still names the field it is about.

    Pydantic gives model validators an empty location; the ``field`` in the context lets
    :mod:`databus.wire` report ``birth_date: ...`` instead of a nameless reason.
    """
    return PydanticCustomError("record_check", message, {"field": field})
