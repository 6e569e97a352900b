"""Grants: which agency receives which fields of which dataset, why, and until when.

A grant is code: it lives in a reviewed file under ``deploy/grants/``, one file per
owner agency (``<owner>.yaml``), so that the owner reviews and merges every grant of
its data. :func:`load_grants` refuses anything it cannot vouch for and names every
problem with its file, entry and line: unknown datasets or fields, sensitive fields
without a legal basis, duplicates, a grant filed under another owner. A grant past
its ``expires`` day is kept (it explains what was shared) but inactive.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from databus.catalog import CATALOG, Catalog, Dataset
from databus.errors import GrantError

#: Agency names become user names, consumer-group prefixes and topic name parts.
AGENCY_NAME = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
#: Principals that are not agencies (the super user, the auditor, our own workers).
RESERVED_NAMES = frozenset({"admin", "auditor", "anonymous"})
RESERVED_PREFIX = "databus"
#: Share topics: ``share.<consumer>.<dataset>``.
SHARE_PREFIX = "share."
#: Keys of a grant entry, in the order they are written; all but legal_basis required.
KEYS = ("consumer", "dataset", "fields", "purpose", "legal_basis", "expires")
REQUIRED_KEYS = tuple(key for key in KEYS if key != "legal_basis")


@dataclass(frozen=True)
class Grant:
    """One consumer's right to some fields of one dataset, for a purpose, until a day."""

    consumer: str
    dataset: str
    fields: tuple[str, ...]
    purpose: str
    expires: dt.date
    """The last day (in the province's time zone) on which records are shared."""
    legal_basis: str | None = None
    origin: str = ""
    """Where it was written, e.g. ``deploy/grants/health.yaml, grant 2 (line 14)``."""

    @property
    def share_topic(self) -> str:
        """The topic the consumer reads: ``share.<consumer>.<dataset>``."""
        return share_topic(self.consumer, self.dataset)

    def active_on(self, day: dt.date) -> bool:
        """Whether records are shared on ``day`` (expired grants share nothing)."""
        return day <= self.expires

    def describe(self, today: dt.date) -> dict[str, Any]:
        """A JSON-ready description, for ``databus catalog`` and ``grants list``."""
        return {
            "consumer": self.consumer,
            "dataset": self.dataset,
            "share_topic": self.share_topic,
            "fields": list(self.fields),
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "expires": self.expires.isoformat(),
            "state": "active" if self.active_on(today) else "expired",
            "origin": self.origin,
        }


def share_topic(consumer: str, dataset: str) -> str:
    """The share topic of ``consumer``'s view of ``dataset``."""
    return f"{SHARE_PREFIX}{consumer}.{dataset}"


@dataclass(frozen=True)
class GrantSet:
    """Every grant, with the lookups the projection and the ACLs need."""

    grants: tuple[Grant, ...] = ()
    sources: tuple[Path, ...] = field(default=())
    """The files they were read from."""

    def __iter__(self) -> Iterator[Grant]:
        return iter(self.grants)

    def __len__(self) -> int:
        return len(self.grants)

    def for_dataset(self, dataset: str) -> list[Grant]:
        """Grants of one dataset, active or not."""
        return [g for g in self.grants if g.dataset == dataset]

    def for_consumer(self, consumer: str) -> list[Grant]:
        """Grants to one consumer, active or not."""
        return [g for g in self.grants if g.consumer == consumer]

    def active(self, day: dt.date) -> list[Grant]:
        """The grants under which records are shared on ``day``."""
        return [g for g in self.grants if g.active_on(day)]

    def consumers(self) -> list[str]:
        """Every agency that holds a grant, active or not, sorted."""
        return sorted({g.consumer for g in self.grants})


def load_grants(path: Path, catalog: Catalog = CATALOG) -> GrantSet:
    """Read and check a grant file, or every ``*.yaml`` of a directory of them.

    In a directory, ``<owner>.yaml`` may only hold grants of ``<owner>``'s datasets: the
    owner reviews that file. Raises :class:`GrantError` listing every problem.
    """
    from databus.governance.grant_files import read_entries  # noqa: PLC0415 - YAML

    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        owner_of_file = {f: f.stem for f in files}
    elif path.is_file():
        files = [path]
        owner_of_file = {}
    else:
        raise GrantError([f"{path}: no such grant file or directory"])
    problems: list[str] = []
    grants: list[Grant] = []
    for file in files:
        try:
            entries = read_entries(file)
        except GrantError as unreadable:
            problems += unreadable.problems
            continue
        for entry in entries:
            grant, found = check_entry(
                entry.data, entry.origin, catalog, owner=owner_of_file.get(file)
            )
            problems += found
            if grant is not None:
                grants.append(grant)
    problems += duplicates(grants)
    if problems:
        raise GrantError(problems)
    return GrantSet(tuple(grants), tuple(files))


def duplicates(grants: Iterable[Grant]) -> list[str]:
    """One grant per consumer and dataset: two would make the share topic ambiguous."""
    seen: dict[tuple[str, str], Grant] = {}
    problems = []
    for grant in grants:
        key = (grant.consumer, grant.dataset)
        first = seen.setdefault(key, grant)
        if first is not grant:
            problems.append(
                f"{grant.origin}: duplicate grant of {grant.dataset} to {grant.consumer}, "
                f"already granted at {first.origin}; merge them into one"
            )
    return problems


def check_entry(
    data: object, origin: str, catalog: Catalog = CATALOG, *, owner: str | None = None
) -> tuple[Grant | None, list[str]]:
    """One grant entry: the :class:`Grant`, or ``None`` and every problem found."""
    if not isinstance(data, Mapping):
        return None, [f"{origin}: a grant is a mapping of {', '.join(KEYS)}"]
    problems = [f"{origin}: {problem}" for problem in _entry_problems(data, catalog, owner)]
    if problems:
        return None, problems
    return (
        Grant(
            consumer=data["consumer"],
            dataset=data["dataset"],
            fields=tuple(data["fields"]),
            purpose=data["purpose"].strip(),
            expires=_as_date(data["expires"]) or dt.date.min,
            legal_basis=(data.get("legal_basis") or "").strip() or None,
            origin=origin,
        ),
        [],
    )


def _entry_problems(data: Mapping[Any, Any], catalog: Catalog, owner: str | None) -> list[str]:
    problems = [
        f"unknown key {key!r}{_did_you_mean(str(key), KEYS)}" for key in data if key not in KEYS
    ]
    problems += [f"missing {key}" for key in REQUIRED_KEYS if key not in data]
    dataset, found = _dataset(data, catalog, owner)
    problems += found
    if "consumer" in data:
        problems += _consumer_problems(data["consumer"], dataset)
    if "fields" in data:
        problems += _field_problems(data["fields"], dataset)
    purpose = data.get("purpose")
    if "purpose" in data and (not isinstance(purpose, str) or not purpose.strip()):
        problems.append("purpose: say what the consumer needs the data for")
    problems += _legal_basis_problems(data.get("legal_basis"), data.get("fields"), dataset)
    if "expires" in data and _as_date(data["expires"]) is None:
        problems.append(f"expires: {data['expires']!r} is not a date (YYYY-MM-DD)")
    return problems


def _dataset(
    data: Mapping[Any, Any], catalog: Catalog, owner: str | None
) -> tuple[Dataset | None, list[str]]:
    if "dataset" not in data:
        return None, []
    name = data["dataset"]
    if not isinstance(name, str) or name not in catalog:
        hint = _did_you_mean(str(name), [d.name for d in catalog])
        return None, [f"dataset: unknown dataset {name!r}{hint}"]
    dataset = catalog.get(name)
    if not dataset.can_be_shared:
        return None, [f"dataset: {name} is never shared (see `databus catalog show`)"]
    if owner is not None and dataset.owner != owner:
        return dataset, [
            f"dataset: {dataset.name} belongs to {dataset.owner}, whose grants are in "
            f"{dataset.owner}.yaml (the owner reviews them), not in {owner}.yaml"
        ]
    return dataset, []


def _legal_basis_problems(basis: object, fields: object, dataset: Dataset | None) -> list[str]:
    if basis is not None and not isinstance(basis, str):
        return ["legal_basis: must be text (the law and article relied on)"]
    if dataset is None or not isinstance(fields, list) or (basis or "").strip():
        return []
    sensitive = [f for f in fields if dataset.classification.get(f) == "sensitive_personal"]
    if not sensitive:
        return []
    return [
        f"legal_basis: missing, but {', '.join(sensitive)} "
        f"{'is' if len(sensitive) == 1 else 'are'} sensitive personal information "
        "(PIPL art. 28): name the law that allows sharing it"
    ]


def _consumer_problems(consumer: object, dataset: Dataset | None) -> list[str]:
    if not isinstance(consumer, str) or not AGENCY_NAME.match(consumer):
        return [
            f"consumer: {consumer!r} is not an agency name (lower-case letters, digits and "
            "'-', 2 to 32 characters, starting with a letter)"
        ]
    if consumer in RESERVED_NAMES or consumer.startswith(RESERVED_PREFIX):
        return [f"consumer: {consumer!r} is reserved for databus itself"]
    if dataset is not None and consumer == dataset.owner:
        return [f"consumer: {consumer} owns {dataset.name}; an owner needs no grant"]
    return []


def _field_problems(fields: object, dataset: Dataset | None) -> list[str]:
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        return ["fields: a non-empty list of field names"]
    problems = []
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        problems.append(f"fields: {', '.join(repeated)} listed twice")
    if "person_ref" not in fields:
        problems.append(
            "fields: person_ref must be listed: it is the key of every share record, so it "
            "is always shared"
        )
    if dataset is not None:
        known = list(dataset.bus_model.model_fields)
        for name in fields:
            if name not in known:
                hint = _did_you_mean(name, known)
                problems.append(f"fields: {dataset.name} has no field {name!r}{hint}")
    return problems


def _as_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None  # a time of day would be ambiguous across time zones
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
