"""What the rules take (an :class:`Observation`) and give (a :class:`Decision`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from databus.records import ElderlyAllowance, FraudAlert, PensionStatus

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


def decision_id(rule_version: str, person_ref: str, *identity: str) -> str:
    """The ``ce_id`` of a decision: a hash of the rule, the person and what it decides.

    ``identity`` names the decision itself (its kind and its cycle, month or evidence),
    never the moment it was computed, so that re-deriving it gives the same id.
    """
    text = "\x1f".join((rule_version, person_ref, *identity))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
