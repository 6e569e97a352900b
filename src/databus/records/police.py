"""Public security: the household registry (hukou)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from databus.identity import birth_date_of
from databus.records.base import (
    BusRecord,
    Day,
    InputRecord,
    Record,
    RegionCode,
    not_after_record,
    record_error,
)

HouseholdEvent = Literal["registered", "moved_in", "moved_out", "deregistered_death", "updated"]


class HouseholdFields(Record):
    event: HouseholdEvent = Field(description="What happened to the registration.")
    birth_date: Day = Field(description="Date of birth (equals the date in the ID).")
    region_code: RegionCode = Field(description="6-digit GB/T 2260 region code.")
    date_of_death: Day | None = Field(
        default=None, description="Date of death; required when event is deregistered_death."
    )

    @model_validator(mode="after")
    def _dates_agree(self) -> Self:
        if self.event == "deregistered_death" and self.date_of_death is None:
            raise record_error("date_of_death", "is required when event is deregistered_death")
        not_after_record(self, self.birth_date, "birth_date")
        not_after_record(self, self.date_of_death, "date_of_death")
        if self.date_of_death is not None and self.date_of_death < self.birth_date:
            raise record_error("date_of_death", "is before birth_date")
        return self


class HouseholdInput(HouseholdFields, InputRecord):
    """A household registry event as the police publish it."""

    @model_validator(mode="after")
    def _birth_date_matches_id(self) -> Self:
        if birth_date_of(self.citizen_id) != self.birth_date:
            raise record_error("birth_date", "differs from the date of birth inside citizen_id")
        return self


class Household(HouseholdFields, BusRecord):
    """A household registry event on the bus."""
