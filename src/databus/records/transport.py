"""Transport: transit card taps and identity-checked boardings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from databus.records.base import BusRecord, Code, InputRecord, Record


class TransitTapFields(Record):
    card_id: Code = Field(description="Transit card number.")
    mode: Literal["bus", "metro", "rail", "flight"] = Field(description="Mode of transport.")
    station_code: Code = Field(description="Station, stop or airport code.")
    identity_verified: bool = Field(
        description="True when identity was checked (rail and flight security checks)."
    )


class TransitTapInput(TransitTapFields, InputRecord):
    """A transit tap as the transport department publishes it."""


class TransitTap(TransitTapFields, BusRecord):
    """A transit tap on the bus."""
