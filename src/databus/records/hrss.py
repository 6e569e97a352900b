"""Social security (hrss): the pensioner roster and face authentications."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from databus.records.base import BusRecord, Cents, Code, InputRecord, Record


class PensionerFields(Record):
    pensioner_account: Code = Field(description="The pension account number at hrss.")
    scheme: Literal["employee", "resident"] = Field(description="Pension scheme.")
    status: Literal["active", "terminated"] = Field(description="Whether benefits are paid.")
    benefit_start: dt.date = Field(description="First day of the benefit.")
    monthly_amount_cents: Cents = Field(description="Monthly benefit in cents.")


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
