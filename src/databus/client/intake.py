"""From agency input to bus message: validate, pseudonymise, envelope.

Pure CPU work with no Kafka client, so it is unit-testable and benchmarkable alone.
Every input becomes either a :class:`~databus.wire.Message` or a
:class:`~databus.wire.Rejection`; nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from databus.catalog import Dataset
from databus.client.files import Line
from databus.errors import CatalogError
from databus.identity import Pseudonymizer, mask_citizen_id, mask_id_like
from databus.records.base import InputRecord
from databus.records.dlq import Reason
from databus.wire import Encoder, Message, Rejection, reasons_from

#: Longest input line we parse; anything longer is rejected unread.
MAX_LINE_BYTES = 64 * 1024
#: How much of an overlong line is kept in its rejection (and the dead-letter topic).
KEPT_OF_LONG_LINE = 256
#: Shorter ``citizen_id`` values reveal nothing and are left as they are.
MIN_MASKED_LENGTH = 8
_RAW_ID = {"citizen_id"}
#: Reads a JSON object as its list of (key, value) pairs, repeated keys included.
_PAIRS = json.JSONDecoder(object_pairs_hook=list)


class Intake:
    """Turns one dataset's agency records into bus messages."""

    def __init__(
        self, dataset: Dataset, pseudonymizer: Pseudonymizer, *, source: str | None = None
    ) -> None:
        if dataset.input_model is None:
            raise CatalogError(
                f"{dataset.name} is not published by agencies (it has no input form)",
                dataset=dataset.name,
            )
        self.dataset = dataset
        self.source = source or dataset.owner
        self._model: type[InputRecord] = dataset.input_model
        self._pseudonymizer = pseudonymizer
        self._encoder = Encoder(dataset, self.source)

    def accept(self, record: InputRecord) -> Message:
        """Pseudonymise and envelope an already validated record."""
        person_ref = self._pseudonymizer.person_ref(record.citizen_id)
        data = {"person_ref": person_ref, **record.model_dump(exclude=_RAW_ID)}
        # orjson writes the datetime as RFC 3339, as in the value itself.
        time = orjson.dumps(record.occurred_at)[1:-1]
        return self._encoder.encode(data, subject=person_ref, time=time)

    def from_line(self, line: Line, *, where: str | None = None) -> Message | Rejection:
        """Check one line read from a file (NDJSON, or a CSV row)."""
        where = where or f"line {line.number}"
        if len(line.raw) > MAX_LINE_BYTES:
            return self._too_long(line.raw, where)
        if line.problem is not None:
            return self.reject(line.raw, [Reason.of("$", line.problem, "line")], where)
        if line.fields is not None:
            return self.from_mapping(line.fields, where=where, raw=line.raw, strict=False)
        return self.from_json(line.raw, where=where)

    def from_json(self, raw: bytes, *, where: str | None = None) -> Message | Rejection:
        """Check one JSON object; JSON types must match the schema exactly (strict).

        A key given twice is rejected: JSON parsers keep one of the values (ours the
        last), so what the agency meant is unclear."""
        if len(raw) > MAX_LINE_BYTES:
            return self._too_long(raw, where)
        try:
            record = self._model.model_validate_json(raw, strict=True)
        except ValidationError as invalid:
            return self.reject(raw, reasons_from(invalid), where)
        repeated = _repeated_key(raw, len(record.model_fields_set))
        if repeated is not None:
            reason = Reason.of(repeated, "is given more than once", "duplicate_key")
            return self.reject(raw, [reason], where)
        return self.accept(record)

    def _too_long(self, raw: bytes, where: str | None) -> Rejection:
        """An overlong line, rejected unread; only its beginning is kept, so that the
        dead letter stays far below Kafka's message size limit."""
        reason = Reason.of("$", f"line longer than {MAX_LINE_BYTES} bytes", "too_long")
        return self.reject(raw[:KEPT_OF_LONG_LINE], [reason], where)

    def from_mapping(
        self,
        values: Mapping[str, Any],
        *,
        where: str | None = None,
        raw: bytes | None = None,
        strict: bool = False,
    ) -> Message | Rejection:
        """Check a mapping (a CSV row of strings, or a dict from Python code)."""
        try:
            record = self._model.model_validate(values, strict=strict)
        except ValidationError as invalid:
            shown = raw if raw is not None else orjson.dumps(values, default=str)
            return self.reject(shown, reasons_from(invalid), where, values)
        return self.accept(record)

    def reject(
        self,
        raw: bytes,
        reasons: list[Reason],
        where: str | None,
        values: Mapping[str, Any] | None = None,
    ) -> Rejection:
        """A rejection whose ``raw`` text has every ID number masked."""
        return Rejection(
            dataset=self.dataset.name,
            agency=self.source,
            raw=_masked(raw, values),
            reasons=reasons,
            source=where,
        )


def _repeated_key(raw: bytes, distinct: int) -> str | None:
    """The first key that ``raw``, a JSON object with ``distinct`` different keys,
    gives twice; None when none is repeated (the usual case costs one count)."""
    try:
        pairs: list[tuple[str, Any]] = _PAIRS.decode(raw.decode("utf-8"))
    except ValueError:  # valid for pydantic, too odd for the standard library
        return None
    if len(pairs) == distinct:
        return None
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


def _masked(raw: bytes, values: Mapping[str, Any] | None) -> str:
    """The raw input as text with the citizen ID (and anything ID-shaped) masked."""
    text = raw.decode("utf-8", errors="replace")
    if values is None:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        values = parsed if isinstance(parsed, dict) else None
    citizen_id = values.get("citizen_id") if values else None
    if isinstance(citizen_id, str) and len(citizen_id) >= MIN_MASKED_LENGTH:
        text = text.replace(citizen_id, mask_citizen_id(citizen_id))
    return mask_id_like(text)
