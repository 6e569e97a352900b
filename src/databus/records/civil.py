"""Civil affairs: funerals and cremations."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from databus.records.base import BusRecord, Code, InputRecord, Record


class FuneralFields(Record):
    record_no: Code = Field(description="Funeral home record number.")
    date_of_death: dt.date = Field(description="Date of death on the funeral record.")
    funeral_home_code: Code = Field(description="Code of the funeral home.")


class FuneralInput(FuneralFields, InputRecord):
    """A funeral record as civil affairs publishes it."""


class Funeral(FuneralFields, BusRecord):
    """A funeral record on the bus."""
