"""Bus-internal datasets: the clock."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from databus.records.base import Day, Text


class ClockTick(BaseModel):
    """The passing of a day, one tick per partition (decisions never read the wall clock).

    A tick with ``reset`` sets the clock back: ``as_of`` is the day the bus really is
    at, and every tick for a later day is withdrawn, with what it decided (a mistyped
    ``databus clock tick --date 2099-01-01``, say).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: Day = Field(description="The day that has begun.")
    reset: bool = Field(
        default=False,
        description="Withdraw every tick for a day after as_of (and reinstate what they "
        "decided); added in a compatible change.",
    )
    reason: Text | None = Field(
        default=None, description="Why the clock is reset (required with reset)."
    )

    @model_validator(mode="after")
    def _reset_says_why(self) -> Self:
        if self.reset and self.reason is None:
            raise ValueError("a reset needs a reason")
        return self
