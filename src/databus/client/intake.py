"""From agency input to bus message: validate, pseudonymise, envelope.

Pure CPU work with no Kafka client, so it is unit-testable and benchmarkable alone.
Every input becomes either a :class:`~databus.wire.Message` or a
:class:`~databus.wire.Rejection`; nothing is dropped. Rejections name only the
dataset's own fields, and their ``raw`` text has anything like an ID number masked.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from databus.catalog import CATALOG, Dataset
from databus.client.files import Columns, Line
from databus.errors import CatalogError
from databus.identity import Pseudonymizer, mask_citizen_id, mask_id_like
from databus.records.base import FUTURE_SKEW, InputRecord, dated_after
from databus.records.dlq import EXTRA, WHOLE_LINE, Reason
from databus.records.retraction import RetractionInputFields
from databus.wire import Encoder, Message, Rejection, reasons_from

#: Longest input line we parse; anything longer is rejected unread.
MAX_LINE_BYTES = 64 * 1024
#: How much of an overlong line is kept in its rejection (and the dead-letter topic).
KEPT_OF_LONG_LINE = 256
#: Shorter ``citizen_id`` values reveal nothing and are left as they are.
MIN_MASKED_LENGTH = 8
#: Input fields that never reach the bus: the ID number, and the record a retraction
#: carries (only its id does).
_NOT_ON_THE_BUS = {"citizen_id", "record"}
#: Reads a JSON object as its list of (key, value) pairs, repeated keys included.
_PAIRS = json.JSONDecoder(object_pairs_hook=list)
#: A JSON ``\\uXXXX`` escape (an ID number can be written with them).
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_FUTURE = f"is in the future (later than now + {int(FUTURE_SKEW.total_seconds() // 60)} minutes)"

Clock = Callable[[], dt.datetime]
"""Where the publisher's "now" comes from (an aware datetime); injectable for tests."""
#: How long (monotonic seconds) a reading of the clock serves as "now": it is needed for
#: every record, and reading and comparing aware datetimes costs a microsecond.
CLOCK_READ_EVERY_S = 0.5


def utc_now() -> dt.datetime:
    """The publisher's clock: the host's time, in UTC."""
    return dt.datetime.now(dt.UTC)


class Intake:
    """Turns one dataset's agency records into bus messages."""

    def __init__(
        self,
        dataset: Dataset,
        pseudonymizer: Pseudonymizer,
        *,
        source: str | None = None,
        clock: Clock = utc_now,
        allow_future: bool = False,
    ) -> None:
        """``allow_future`` lets records dated after ``clock()`` + 5 minutes through:
        only for a demo broker, where simulations publish future days."""
        if dataset.input_model is None:
            raise CatalogError(
                f"{dataset.name} is not published by agencies (it has no input form)",
                dataset=dataset.name,
            )
        self.dataset = dataset
        self.source = source or dataset.owner
        self.allow_future = allow_future
        self._clock = clock
        self._now = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._surely_past = 0
        self._read_again_at = float("-inf")
        self._model: type[InputRecord] = dataset.input_model
        self.columns = Columns.of(dataset.name, self._model)
        self._pseudonymizer = pseudonymizer
        self._encoder = Encoder(dataset, self.source, key_id=pseudonymizer.key_id)
        self._withdrawn: dict[str, Intake] = {}

    def accept(self, record: InputRecord, *, record_id: str | None = None) -> Message:
        """Pseudonymise and envelope a record already validated and admitted (a
        retraction that carried the withdrawn record gets its ``record_id``)."""
        person_ref = self._pseudonymizer.person_ref(record.citizen_id)
        data = {"person_ref": person_ref, **record.model_dump(exclude=_NOT_ON_THE_BUS)}
        if record_id is not None:
            data["record_id"] = record_id
        # orjson writes the datetime as RFC 3339, as in the value itself.
        time = orjson.dumps(record.occurred_at)[1:-1]
        return self._encoder.encode(data, subject=person_ref, time=time)

    def admit(
        self,
        record: InputRecord,
        *,
        raw: bytes | None = None,
        where: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Message | Rejection:
        """A valid record becomes a message unless it is dated in the future (later
        than the publisher's clock plus :data:`~databus.records.base.FUTURE_SKEW`)."""
        shown = raw if raw is not None else record.model_dump_json().encode()
        if not self.allow_future and self._dated_in_the_future(record):
            return self.reject(
                shown, [Reason.of("occurred_at", _FUTURE, "future_dated")], where, values
            )
        if isinstance(record, RetractionInputFields) and record.record is not None:
            withdrawn = self._withdrawn_id(record)
            if isinstance(withdrawn, Reason):
                return self.reject(shown, [withdrawn], where, values)
            return self.accept(record, record_id=withdrawn)
        return self.accept(record)

    def _withdrawn_id(self, retraction: RetractionInputFields) -> str | Reason:
        """The ``ce_id`` of the record a retraction carries, as it was published: the
        same record gives the same id (a content hash), with this publisher's key."""
        dataset: str = getattr(retraction, "dataset", "")
        intake = self._withdrawn.get(dataset)
        if intake is None:
            target = CATALOG.get(dataset)
            intake = Intake(target, self._pseudonymizer, allow_future=True)
            self._withdrawn[dataset] = intake
        outcome = intake.from_mapping(retraction.record or {})
        if isinstance(outcome, Rejection):
            first = outcome.reasons[0]
            return Reason.of("record", f"is not a valid {dataset} record ({first})", "record_check")
        person_ref = self._pseudonymizer.person_ref(retraction.citizen_id)  # type: ignore[attr-defined]
        if outcome.key != person_ref.encode():
            return Reason.of("record", "is about another person than citizen_id", "record_check")
        return outcome.id

    def _dated_in_the_future(self, record: InputRecord) -> bool:
        """:func:`~databus.records.base.dated_after` the publisher's clock, asked only
        when the record's own date is not two days before the clock's UTC date (then
        it cannot be, whatever its UTC offset: offsets are less than a day)."""
        moment = time.monotonic()
        if moment >= self._read_again_at:
            self._now = self._clock()
            self._surely_past = self._now.astimezone(dt.UTC).toordinal() - 1
            self._read_again_at = moment + CLOCK_READ_EVERY_S
        occurred = record.occurred_at
        return occurred.toordinal() >= self._surely_past and dated_after(record, self._now)

    def from_line(self, line: Line, *, where: str | None = None) -> Message | Rejection:
        """Check one line read from a file (NDJSON, or a CSV row)."""
        where = where or f"line {line.number}"
        if len(line.raw) > MAX_LINE_BYTES:
            return self._too_long(line.raw, where)
        if line.problem is not None:
            reason = Reason.of(WHOLE_LINE, mask_id_like(line.problem), line.problem_kind)
            return self.reject(line.raw, [reason], where)
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
            return self.reject(raw, reasons_from(invalid, self._model), where)
        repeated = _repeated_key(raw, len(record.model_fields_set))
        if repeated is not None:
            field = repeated if repeated in self.columns.allowed else EXTRA
            reason = Reason.of(field, "is given more than once", "duplicate_key")
            return self.reject(raw, [reason], where)
        return self.admit(record, raw=raw, where=where)

    def _too_long(self, raw: bytes, where: str | None) -> Rejection:
        """An overlong line, rejected unread; only its beginning is kept, so that the
        dead letter stays far below Kafka's message size limit."""
        reason = Reason.of(WHOLE_LINE, f"line longer than {MAX_LINE_BYTES} bytes", "too_long")
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
            shown = raw if raw is not None else _dumped(values)
            return self.reject(shown, reasons_from(invalid, self._model), where, values)
        return self.admit(record, raw=raw, where=where, values=values)

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
            source=None if where is None else mask_id_like(where),
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
    if "\\u" in text:
        text = _unescaped(text)
    if isinstance(citizen_id, str) and len(citizen_id) >= MIN_MASKED_LENGTH:
        text = text.replace(citizen_id, mask_citizen_id(citizen_id))
    return mask_id_like(text)


def _unescaped(text: str) -> str:
    """JSON ``\\uXXXX`` escapes as the characters they stand for, so that an ID number
    written with escapes is seen (and masked); quotes, backslashes, control characters
    and surrogates stay escaped."""

    def character(escape: re.Match[str]) -> str:
        decoded = chr(int(escape.group(1), 16))
        kept = decoded in '"\\' or unicodedata.category(decoded) in {"Cc", "Cs"}
        return escape.group(0) if kept else decoded

    return _ESCAPE.sub(character, text)


def _dumped(values: Mapping[Any, Any]) -> bytes:
    """A mapping from Python code as JSON text for its rejection, whatever its keys."""
    return orjson.dumps(values, default=str, option=orjson.OPT_NON_STR_KEYS)
