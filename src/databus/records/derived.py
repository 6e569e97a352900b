"""Datasets derived by the decision engine (DOMAIN.md §1-2)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from databus.records.base import Cents, PersonRef

Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class _Derived(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceRef(BaseModel):
    """One source event that justifies a decision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="ce_id of the source event.")
    dataset: str = Field(description="Dataset of the source event.")
    occurred_at: AwareDatetime = Field(description="When the source event happened.")


class PensionStatus(_Derived):
    """A silent-authentication decision about one pension."""

    person_ref: PersonRef
    pensioner_account: str
    decision: Literal["confirmed", "reminder", "suspended", "resumed"]
    reason: Literal["evidence", "no_evidence", "deceased"]
    as_of: dt.date
    qualified_until: dt.date
    evidence: list[EvidenceRef] = Field(default_factory=list)
    date_of_death: dt.date | None = None
    rule_version: str


class FraudAlert(_Derived):
    """Evidence of life dated after a registered death."""

    person_ref: PersonRef
    kind: Literal["post_mortem_activity"]
    date_of_death: dt.date
    death_evidence: EvidenceRef
    activity: EvidenceRef
    rule_version: str


class ElderlyAllowance(_Derived):
    """An old-age allowance decision."""

    person_ref: PersonRef
    decision: Literal["granted", "tier_changed", "stopped"]
    tier: Literal["80-89", "90-99", "100+"]
    monthly_amount_cents: Cents
    effective_month: Month
    reason: Literal["age", "deceased", "moved_out"]
    rule_version: str
