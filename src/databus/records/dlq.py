"""The dead-letter dataset: input that was rejected, with the reasons."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr


class Reason(BaseModel):
    """Why a record was rejected: the field path (``$`` for the whole line) and a message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="Dotted path of the offending field, or $ for the line.")
    message: str = Field(description="What is wrong, without repeating personal data.")
    _kind: str = PrivateAttr(default="invalid")

    @classmethod
    def of(cls, field: str, message: str, kind: str) -> Reason:
        """A reason with a short kind of error (pydantic's error type, ``json_invalid``,
        ``line``...), used for metric labels; not part of the dead-letter record."""
        reason = cls(field=field, message=message)
        reason._kind = kind
        return reason

    @property
    def code(self) -> str:
        """A bounded label: the top-level field and the kind, e.g. ``citizen_id:value_error``."""
        return f"{self.field.split('.', 1)[0]}:{self._kind}"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class Rejected(BaseModel):
    """A rejected input line or message, kept so that nothing is lost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(description="Dataset the input was meant for.")
    agency: str = Field(description="Agency that published it.")
    raw: str = Field(description="The input, with anything like an ID number masked.")
    reasons: list[Reason] = Field(min_length=1, description="Every problem found.")
    rejected_at: AwareDatetime = Field(description="When it was rejected.")
    source: str | None = Field(
        default=None, description="Where it came from: file:line, or topic[partition]@offset."
    )
