"""The audit trail of sharing: one record per record shared with a consumer.

Records of one partition form a hash chain (:mod:`databus.governance.chain`): each
names the hash of the one before it and carries the SHA-256 of that hash and its own
content, so changing, deleting or reordering one of them breaks the chain there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from databus.records.base import PersonRef

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest as 64 lower-case hex digits."""


class SharingAudit(BaseModel):
    """One record shared with one consumer under one grant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=0, description="Position in this partition's chain, from 0.")
    consumer: str = Field(description="The agency the record was shared with.")
    dataset: str = Field(description="The dataset the record came from.")
    share_topic: str = Field(description="Where the consumer reads it.")
    person_ref: PersonRef = Field(description="Whose record it was (the message key).")
    source_event_id: str = Field(description="ce_id of the source event (and of the share).")
    source_offset: int = Field(
        ge=0, description="Offset of the source event in its topic (same partition)."
    )
    fields: list[str] = Field(description="The fields shared: those the grant names.")
    purpose: str = Field(description="The grant's purpose.")
    legal_basis: str | None = Field(description="The grant's legal basis, if it names one.")
    shared_at: AwareDatetime = Field(description="When the share was written.")
    prev_hash: Sha256Hex = Field(description="hash of the previous record in the partition.")
    hash: Sha256Hex = Field(description="SHA-256 of prev_hash and this record's content.")


OperationAction = Literal["clock.tick", "clock.reset", "acl.apply", "grants.applied"]
"""Operator actions that can change many decisions or who receives what."""


class OperationAudit(BaseModel):
    """One operator action, done or refused: who, what, why, when.

    ``principal`` is the Kafka user the action ran as (what the broker authenticated);
    ``user`` and ``host`` are what the operator's machine says, for the record.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: OperationAction = Field(description="What was done.")
    outcome: Literal["done", "refused"] = Field(description="Done, or refused by a guard.")
    principal: str = Field(description="The Kafka user it ran as (ANONYMOUS on plaintext).")
    user: str = Field(description="The operating-system user that ran it.")
    host: str = Field(description="The host it ran on.")
    at: AwareDatetime = Field(description="When.")
    reason: str | None = Field(default=None, description="Why, as the operator gave it.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="What exactly (days, flags, counts, changes)."
    )
