"""Datasets derived by the decision engine (docs/rules.md).

Reason ``retracted`` (pension status, allowance) and kind ``withdrawn`` (fraud alert) were
added in a backward-compatible change: they mark the decisions that reinstate what a
withdrawn record (``<owner>.retraction.v1``) or a withdrawn clock tick (a reset) caused.
"""

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
    reason: Literal["evidence", "no_evidence", "deceased", "retracted"]
    as_of: dt.date
    qualified_until: dt.date
    evidence: list[EvidenceRef] = Field(default_factory=list)
    date_of_death: dt.date | None = None
    rule_version: str


class FraudAlert(_Derived):
    """Evidence of life dated after a registered death (``post_mortem_activity``), or the
    cancellation of such an alert (``withdrawn``: the same person, death evidence and
    activity as the alert it cancels; match it to the alert by the activity's id)."""

    person_ref: PersonRef
    kind: Literal["post_mortem_activity", "withdrawn"]
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
    reason: Literal["age", "deceased", "moved_out", "retracted"]
    rule_version: str
