"""Civil affairs: funerals and cremations."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from databus.records.base import BusRecord, Code, Day, InputRecord, Record, not_after_record


class FuneralFields(Record):
    record_no: Code = Field(description="Funeral home record number.")
    date_of_death: Day = Field(description="Date of death on the funeral record.")
    funeral_home_code: Code = Field(description="Code of the funeral home.")

    @model_validator(mode="after")
    def _death_not_after_funeral(self) -> Self:
        not_after_record(self, self.date_of_death, "date_of_death")
        return self


class FuneralInput(FuneralFields, InputRecord):
    """A funeral record as civil affairs publishes it."""


class Funeral(FuneralFields, BusRecord):
    """A funeral record on the bus."""
