"""Social security (hrss): the pensioner roster and face authentications."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from databus.records.base import (
    BusRecord,
    Cents,
    Code,
    Day,
    InputRecord,
    Record,
    not_announced_beyond,
)


class PensionerFields(Record):
    pensioner_account: Code = Field(description="The pension account number at hrss.")
    scheme: Literal["employee", "resident"] = Field(description="Pension scheme.")
    status: Literal["active", "terminated"] = Field(description="Whether benefits are paid.")
    benefit_start: Day = Field(
        description="First day of the benefit (at most a year after occurred_at)."
    )
    monthly_amount_cents: Cents = Field(description="Monthly benefit in cents.")

    @model_validator(mode="after")
    def _start_announced_within_a_year(self) -> Self:
        not_announced_beyond(self, self.benefit_start, "benefit_start")
        return self


class PensionerInput(PensionerFields, InputRecord):
    """A pensioner roster entry as hrss publishes it."""


class Pensioner(PensionerFields, BusRecord):
    """A pensioner roster entry on the bus."""


class FaceAuthenticationFields(Record):
    channel: Literal["app", "counter", "home_visit"] = Field(
        description="Where the face authentication took place."
    )


class FaceAuthenticationInput(FaceAuthenticationFields, InputRecord):
    """A successful face authentication as hrss publishes it."""


class FaceAuthentication(FaceAuthenticationFields, BusRecord):
    """A successful face authentication on the bus."""
