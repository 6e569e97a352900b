"""Bus-internal datasets: the clock."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class ClockTick(BaseModel):
    """The passing of a day, one tick per partition (decisions never read the wall clock)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: dt.date = Field(description="The day that has begun.")
