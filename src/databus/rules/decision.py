"""What the rules take (an :class:`Observation`) and give (a :class:`Decision`), and the
decisions' deterministic ids."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from databus.records import ElderlyAllowance, FraudAlert, PensionStatus
from databus.rules.evidence import Ref

PENSION_STATUS: Final = "derived.pension_status.v1"
FRAUD_ALERT: Final = "derived.fraud_alert.v1"
ELDERLY_ALLOWANCE: Final = "derived.elderly_allowance.v1"


@dataclass(frozen=True, slots=True)
class Observation:
    """A source event as the rules see it."""

    id: str
    """The event's ``ce_id``: the identity used to recognise a redelivery."""
    dataset: str
    """The dataset it was published to, e.g. ``health.hospital_visit.v1``."""
    record: BaseModel
    """The typed bus record (it has ``person_ref`` and ``occurred_at``)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A derived event to publish: its deterministic id, its dataset and its record."""

    id: str
    """Hash of rule version, person and the decision's identity; equal after a replay."""
    dataset: str
    """``derived.pension_status.v1``, ``derived.fraud_alert.v1`` or
    ``derived.elderly_allowance.v1``."""
    record: PensionStatus | FraudAlert | ElderlyAllowance


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A retraction as the rules apply it: the record it withdraws, and itself."""

    record_id: str
    """``ce_id`` of the withdrawn record."""
    code: int
    """Its dataset, as a position in :data:`~databus.rules.evidence.DATASETS`."""
    retraction: Ref
    """The retraction event (cited by the decisions it causes)."""
    day: dt.date
    """The retraction's local day (``as_of`` of the decisions it causes)."""

    @property
    def identity(self) -> tuple[str, str]:
        """What every decision caused by this retraction adds to its identity."""
        return ("retracted", self.record_id)

    def cited(self, withdrawn: Ref) -> tuple[Ref, Ref]:
        """The evidence of a decision it causes: the withdrawn record and the retraction."""
        return (withdrawn, self.retraction)


def decision_id(rule_version: str, person_ref: str, *identity: str) -> str:
    """The ``ce_id`` of a decision: a hash of the rule, the person and what it decides.

    ``identity`` names the decision itself (its kind and its cycle, month or evidence),
    never the moment it was computed, so that re-deriving it gives the same id.
    """
    text = "\x1f".join((rule_version, person_ref, *identity))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def epoch_tag(epoch: int) -> tuple[str, ...]:
    """What a person's epoch adds to a decision's identity: nothing before the first
    retraction or reset that changed their state (so earlier ids stay as they were),
    then the epoch, so that a decision made again after one gets a new id."""
    return () if epoch == 0 else (f"epoch {epoch}",)
