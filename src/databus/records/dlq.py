"""The dead-letter dataset: input that was rejected, with the reasons."""

from __future__ import annotations

from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr

REASON_KINDS: Final = (
    "missing",
    "extra_forbidden",
    "json_invalid",
    "type_error",
    "format_error",
    "literal_error",
    "out_of_range",
    "pattern_mismatch",
    "value_error",
    "record_check",
    "duplicate_key",
    "future_dated",
    "csv_header",
    "line",
    "too_long",
    "invalid",
)
"""Every kind of error a reason can have (the second half of :attr:`Reason.code`): a
closed set, so that a metric labelled by it has a bounded number of series."""
WHOLE_LINE: Final = "$"
"""The field of a reason about the whole line (not JSON, not an object, a bad header)."""
EXTRA: Final = "$extra"
"""The field of a reason about keys the dataset does not have: their names are input,
which may be anything (an ID number), so they are never repeated."""

_KINDS_OF: Final = {
    "json_type": "json_invalid",
    "recursion_loop": "json_invalid",
    "recursion_depth_exceeded": "json_invalid",
    "enum": "literal_error",
    "string_not_ascii": "pattern_mismatch",
    "string_pattern_mismatch": "pattern_mismatch",
    "assertion_error": "value_error",
    "int_from_float": "type_error",
    "none_required": "type_error",
    "int_parsing": "type_error",
    "float_parsing": "type_error",
    "bool_parsing": "type_error",
    "invalid_key": "type_error",
    "is_instance_of": "type_error",
    "int_parsing_size": "out_of_range",
    "finite_number": "out_of_range",
    "multiple_of": "out_of_range",
    "datetime_object_invalid": "format_error",
    "date_from_datetime_inexact": "format_error",
    "timezone_naive": "format_error",
    "timezone_aware": "format_error",
    "timezone_offset": "format_error",
    "string_unicode": "format_error",
    "bytes_invalid_encoding": "format_error",
}
_SUFFIXES: Final = (("_type", "type_error"), ("_parsing", "format_error"))
_RANGE_PARTS: Final = ("greater_than", "less_than", "too_short", "too_long", "_past", "_future")


def kind_of(error_type: str) -> str:
    """The kind (one of :data:`REASON_KINDS`) of a pydantic error type: ``int_parsing``
    is a ``type_error``, ``less_than_equal`` ``out_of_range``, an unknown type ``invalid``."""
    if error_type in REASON_KINDS:
        return error_type
    if error_type in _KINDS_OF:
        return _KINDS_OF[error_type]
    if any(part in error_type for part in _RANGE_PARTS) or error_type.startswith("decimal_max"):
        return "out_of_range"
    for suffix, kind in _SUFFIXES:
        if error_type.endswith(suffix):
            return kind
    return "invalid"


class Reason(BaseModel):
    """Why a record was rejected: the field path (``$`` for the whole line, ``$extra``
    for keys the dataset does not have) and a message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(
        description="Dotted path of the offending field, $ for the whole line, $extra for "
        "keys that are not fields of the dataset."
    )
    message: str = Field(description="What is wrong, without repeating personal data.")
    _kind: str = PrivateAttr(default="invalid")

    @classmethod
    def of(cls, field: str, message: str, kind: str) -> Reason:
        """A reason with its kind of error (a pydantic error type or one of
        :data:`REASON_KINDS`, mapped by :func:`kind_of`), used for metric labels; not
        part of the dead-letter record."""
        reason = cls(field=field, message=message)
        reason._kind = kind_of(kind)
        return reason

    @property
    def kind(self) -> str:
        """The kind of error, one of :data:`REASON_KINDS`."""
        return self._kind

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
