"""Bytes in, typed objects out, and back: CloudEvents 1.0 in Kafka binary mode.

A message's value is the record as orjson JSON; its headers carry the envelope
(``ce_specversion``, ``ce_id``, ``ce_source``, ``ce_type``, ``ce_time``, ``ce_subject``,
``ce_dataschema``, the extension ``ce_keyid``, ``content-type``). No Kafka client code
lives here. Rejection reasons name only the dataset's own fields: what the input says
(an unknown key, a header value) is never repeated, since it may be an ID number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Generic, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from databus.catalog import CATALOG, DLQ, Catalog, Dataset
from databus.errors import DecodeError
from databus.identity import mask_id_like
from databus.records.dlq import EXTRA, WHOLE_LINE, Reason, Rejected, kind_of

SPECVERSION = b"1.0"
CONTENT_TYPE = b"application/json"
Headers = list[tuple[str, bytes]]
KEY_ID_HEADER: Final = "ce_keyid"
"""CloudEvents extension attribute: the id of the pseudonym key that made the record's
``person_ref`` (:func:`databus.identity.pseudonym_key_id`), never the key itself."""
#: How much of a header value an error message shows (masked).
_SHOWN_HEADER = 64
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The CloudEvents context attributes of one message."""

    id: str
    source: str
    type: str
    time: str | None = None
    subject: str | None = None
    dataschema: str | None = None
    specversion: str = "1.0"
    datacontenttype: str = "application/json"
    keyid: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, bytes]) -> Envelope:
        """Read the envelope back; ``KeyError`` names a missing required attribute."""

        def text(name: str) -> str | None:
            raw = headers.get(name)
            return None if raw is None else raw.decode()

        def required(name: str) -> str:
            value = text(name)
            if value is None:
                raise KeyError(name)
            return value

        return cls(
            id=required("ce_id"),
            source=required("ce_source"),
            type=required("ce_type"),
            time=text("ce_time"),
            subject=text("ce_subject"),
            dataschema=text("ce_dataschema"),
            specversion=required("ce_specversion"),
            datacontenttype=text("content-type") or "application/json",
            keyid=text(KEY_ID_HEADER),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """What goes to Kafka: topic, key, value and headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    id: str


@dataclass(frozen=True, slots=True)
class Event(Generic[M]):
    """A decoded message: envelope, typed record, and where it was read."""

    envelope: Envelope
    record: M
    topic: str
    partition: int
    offset: int

    def to_json_dict(self) -> dict[str, Any]:
        """CloudEvents structured form with the Kafka position as extension attributes."""
        envelope = {k: v for k, v in _envelope_dict(self.envelope).items() if v is not None}
        return {
            **envelope,
            "partition": self.partition,
            "offset": self.offset,
            "data": self.record.model_dump(mode="json"),
        }


def _envelope_dict(envelope: Envelope) -> dict[str, str | None]:
    return {
        "specversion": envelope.specversion,
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
        "time": envelope.time,
        "subject": envelope.subject,
        "dataschema": envelope.dataschema,
        "datacontenttype": envelope.datacontenttype,
        "keyid": envelope.keyid,
    }


class KafkaRecord(Protocol):
    """The parts of a consumed message we read (aiokafka's ConsumerRecord fits)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class Encoder:
    """Serialises the records of one dataset from one source into Kafka messages.

    The headers that are the same for every message are encoded once here: this runs
    once per published record. Reading them back is :meth:`Envelope.from_headers`.
    """

    __slots__ = ("_dataschema", "_key_id", "_keyed", "_prefix", "_source", "_type", "dataset")

    def __init__(self, dataset: Dataset, source: str, *, key_id: str | None = None) -> None:
        """``key_id`` (of the pseudonym key) goes into every message as ``ce_keyid``."""
        self.dataset = dataset
        self._prefix = dataset.name.encode() + b"\0"
        self._source = source.encode()
        self._type = dataset.name.encode()
        self._dataschema = dataset.dataschema.encode()
        self._keyed = dataset.person_keyed
        self._key_id = None if key_id is None else key_id.encode()

    def encode(
        self,
        data: Mapping[str, Any],
        *,
        subject: str | None = None,
        time: bytes | None = None,
        event_id: str | None = None,
    ) -> Message:
        """A message with ``data`` (a mapping orjson can write) as its JSON value.

        ``subject`` is the person_ref (it becomes the key of person-keyed datasets);
        ``time`` the RFC 3339 ``ce_time``; ``event_id`` defaults to a content hash.
        """
        value = orjson.dumps(data)
        ce_id = event_id or hashlib.sha256(self._prefix + value).hexdigest()[:32]
        headers: Headers = [
            ("ce_specversion", SPECVERSION),
            ("ce_id", ce_id.encode()),
            ("ce_source", self._source),
            ("ce_type", self._type),
        ]
        if time is not None:
            headers.append(("ce_time", time))
        key = None
        if subject is not None:
            key = subject.encode()
            headers.append(("ce_subject", key))
        headers.append(("ce_dataschema", self._dataschema))
        if self._key_id is not None:
            headers.append((KEY_ID_HEADER, self._key_id))
        headers.append(("content-type", CONTENT_TYPE))
        return Message(self.dataset.topic, key if self._keyed else None, value, headers, ce_id)


def encode_record(
    dataset: Dataset,
    record: BaseModel,
    *,
    source: str,
    event_id: str | None = None,
    key_id: str | None = None,
) -> Message:
    """Serialise a typed bus record; person-keyed records are keyed by ``person_ref``."""
    data = record.model_dump(mode="json")
    subject = data.get("person_ref") if dataset.person_keyed else None
    occurred = data.get("occurred_at")
    return Encoder(dataset, source, key_id=key_id).encode(
        data,
        subject=subject,
        time=occurred.encode() if isinstance(occurred, str) else None,
        event_id=event_id,
    )


def decode(message: KafkaRecord, catalog: Catalog = CATALOG) -> Event[BaseModel]:
    """Decode a consumed message into a typed :class:`Event`, or raise :class:`DecodeError`.

    A message on a dataset's topic whose ``ce_type`` names another dataset is refused: a
    client allowed to write one topic must not pass its records off as another
    dataset's (a death certificate written into the transit topic). The error names topic,
    partition and offset, and never repeats the value (header values it shows are masked).
    """

    def failure(reason: str) -> DecodeError:
        return DecodeError(
            reason, topic=message.topic, partition=message.partition, offset=message.offset
        )

    headers = dict(message.headers or ())
    try:
        envelope = Envelope.from_headers(headers)
    except KeyError as missing:
        raise failure(f"missing header {missing.args[0]}") from None
    except UnicodeDecodeError:
        raise failure("a ce_* header is not UTF-8") from None
    if envelope.specversion != "1.0":
        raise failure(f"unsupported ce_specversion {_shown(envelope.specversion)!r}")
    if envelope.type not in catalog:
        raise failure(f"unknown ce_type {_shown(envelope.type)!r}")
    dataset = catalog.get(envelope.type)
    if message.topic != dataset.topic and message.topic in catalog:
        # Who may write a topic is what ACLs control; the type header is the writer's word.
        raise failure(
            f"ce_type {envelope.type} on topic {message.topic}: "
            "a dataset's records belong on its own topic"
        )
    if message.value is None:
        raise failure("empty value (tombstone)")
    model = dataset.bus_model
    try:
        record = model.model_validate_json(message.value)
    except ValidationError as invalid:
        summary = "; ".join(str(reason) for reason in reasons_from(invalid, model))
        raise failure(f"invalid {envelope.type}: {summary}") from None
    return Event(envelope, record, message.topic, message.partition, message.offset)


def _shown(value: str) -> str:
    """A header value as an error message may show it: short, and masked."""
    return mask_id_like(value[:_SHOWN_HEADER])


@cache
def _field_names(model: type[BaseModel]) -> frozenset[str]:
    """Every field name of ``model`` and of the models nested in it (at any depth)."""
    names: set[str] = set()
    pending: list[Any] = [model]
    seen: set[Any] = set()
    while pending:
        item = pending.pop()
        if item in seen:
            continue
        seen.add(item)
        if isinstance(item, type) and issubclass(item, BaseModel):
            names.update(item.model_fields)
            pending += [info.annotation for info in item.model_fields.values()]
        pending += list(getattr(item, "__args__", ()))
    return frozenset(names)


def _path(loc: tuple[int | str, ...], model: type[BaseModel], extra: bool) -> str:
    """The dotted path of an error location, keeping only what the schema names: list
    positions and field names. Any other part (a key from the input) becomes ``$extra``
    when the error is about an unknown key, ``$key`` otherwise."""
    if not loc:
        return WHOLE_LINE
    first = loc[0]
    if not isinstance(first, str) or first not in model.model_fields:
        return EXTRA if extra else WHOLE_LINE
    names = _field_names(model)
    parts = [first]
    for part in loc[1:]:
        if isinstance(part, int) or part in names:
            parts.append(str(part))
        else:
            parts.append(EXTRA if extra else "$key")
    return ".".join(parts)


def reasons_from(error: ValidationError, model: type[BaseModel]) -> list[Reason]:
    """Field paths and messages of a validation error of ``model``, without the
    offending values, and without names the input chose: every key that is not a field
    of the dataset is counted in one ``$extra`` reason and not named."""
    reasons: list[Reason] = []
    unknown = 0
    extra_at = 0
    for detail in error.errors(include_url=False, include_input=False):
        kind = kind_of(str(detail["type"]))
        loc = tuple(detail["loc"])
        if kind == "extra_forbidden" and len(loc) <= 1:
            extra_at = extra_at if unknown else len(reasons)
            unknown += 1
            continue
        path = _path(loc, model, kind == "extra_forbidden")
        if not loc:
            named = str((detail.get("ctx") or {}).get("field", WHOLE_LINE))
            path = named if named in model.model_fields else WHOLE_LINE
        message = mask_id_like(detail["msg"].removeprefix("Value error, "))
        reasons.append(Reason.of(path, message, kind))
    if unknown:
        message = (
            "a key that is not a field of this dataset (its name is not repeated)"
            if unknown == 1
            else f"{unknown} keys that are not fields of this dataset (names not repeated)"
        )
        reasons.insert(extra_at, Reason.of(EXTRA, message, "extra_forbidden"))
    return reasons


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input that did not become an event: a value, not an exception."""

    dataset: str
    agency: str
    raw: str
    reasons: list[Reason]
    source: str | None = None
    rejected_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def to_record(self) -> Rejected:
        """The dead-letter record (``raw`` must already be masked)."""
        return Rejected(
            dataset=self.dataset,
            agency=self.agency,
            raw=self.raw,
            reasons=self.reasons,
            rejected_at=self.rejected_at,
            source=self.source,
        )

    def to_message(self, *, source: str = "databus", key_id: str | None = None) -> Message:
        """The dead-letter message for ``dlq.rejected.v1``."""
        return encode_record(DLQ, self.to_record(), source=source, key_id=key_id)

    def summary(self) -> str:
        """One line for logs and terminals: where, and every reason."""
        where = f"{self.source}: " if self.source else ""
        return where + "; ".join(str(reason) for reason in self.reasons)
