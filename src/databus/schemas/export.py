"""JSON Schemas generated from the catalog, and how a ``schemas/`` directory differs from them.

The committed files are the contract that agencies and consumers build against, so they
are generated (never edited by hand), byte-for-byte reproducible, and a change to an
existing file is only written when it is backward compatible (:mod:`.compat`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel

from databus.catalog import CATALOG, SCHEMA_DIR, Catalog, Dataset
from databus.errors import SchemaCompatibilityError
from databus.schemas.compat import Incompatibility, check_backward

__all__ = [
    "DIALECT",
    "ExportPlan",
    "FileStatus",
    "Form",
    "SchemaFile",
    "apply_export",
    "dataset_schema",
    "next_major",
    "plan_export",
    "render",
    "schema_files",
]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema draft every exported file declares in ``$schema``."""

Form = Literal["input", "bus"]
"""``input``: what the owner agency publishes (with ``citizen_id``); ``bus``: what travels."""

Status = Literal["created", "changed", "unchanged", "orphan"]
"""How a file on disk compares with the catalog: ``orphan`` files belong to no dataset."""

_SUFFIX = ".schema.json"


@dataclass(frozen=True)
class SchemaFile:
    """One generated schema and where it lives below the schemas directory."""

    dataset: str
    form: Form
    schema: Mapping[str, Any]

    @property
    def relpath(self) -> PurePosixPath:
        """``<dataset>/<form>.schema.json``, relative to the schemas directory."""
        return PurePosixPath(self.dataset, f"{self.form}{_SUFFIX}")

    @property
    def text(self) -> str:
        """The file content, exactly as written."""
        return render(self.schema)


def render(schema: Mapping[str, Any]) -> str:
    """Deterministic JSON (sorted keys, 2-space indent, final newline) for stable diffs."""
    return json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def schema_id(dataset: Dataset, form: Form) -> str:
    """The ``$id`` of a schema; for the bus form it is the message's ``ce_dataschema``."""
    if form == "bus":
        return dataset.dataschema
    return f"{SCHEMA_DIR}/{dataset.name}/{form}{_SUFFIX}"


def dataset_schema(dataset: Dataset, form: Form) -> dict[str, Any]:
    """The JSON Schema of one form of a dataset, with field classes as ``x-classification``."""
    model: type[BaseModel] | None = dataset.bus_model if form == "bus" else dataset.input_model
    if model is None:
        raise ValueError(f"{dataset.name} has no {form} form")
    schema = model.model_json_schema(mode="validation")
    model_doc = schema.pop("description", "")
    for name, prop in schema.get("properties", {}).items():
        prop["x-classification"] = dataset.classification.get(name, "internal")
    return {
        **schema,
        "$schema": DIALECT,
        "$id": schema_id(dataset, form),
        "title": f"{dataset.name} ({form} form)",
        "description": f"{dataset.description} {model_doc}".strip(),
    }


def schema_files(catalog: Catalog = CATALOG) -> list[SchemaFile]:
    """Every schema the catalog defines: the bus form of each dataset, the input form of
    each source dataset."""
    files = []
    for dataset in catalog:
        forms: list[Form] = ["input", "bus"] if dataset.input_model is not None else ["bus"]
        files += [SchemaFile(dataset.name, form, dataset_schema(dataset, form)) for form in forms]
    return files


def next_major(dataset: str) -> str:
    """The dataset name of the next major version (``x.y.v1`` → ``x.y.v2``)."""
    base, _, major = dataset.rpartition(".v")
    return f"{base}.v{int(major) + 1}" if major.isdigit() else f"{dataset}.v2"


@dataclass(frozen=True)
class FileStatus:
    """One file of the plan: what would happen to it and why it might be refused."""

    dataset: str
    form: str
    relpath: PurePosixPath
    status: Status
    text: str | None = None
    """The content to write; ``None`` for orphans, which are removed."""
    incompatibilities: tuple[Incompatibility, ...] = ()


@dataclass(frozen=True)
class ExportPlan:
    """How a schemas directory differs from the catalog; computed without writing."""

    directory: Path
    files: tuple[FileStatus, ...]

    @property
    def stale(self) -> tuple[FileStatus, ...]:
        """Files that are missing, different or orphaned."""
        return tuple(f for f in self.files if f.status != "unchanged")

    @property
    def incompatible(self) -> tuple[FileStatus, ...]:
        """Changed files whose new schema cannot read records valid under the committed one."""
        return tuple(f for f in self.files if f.incompatibilities)

    @property
    def up_to_date(self) -> bool:
        """Whether the directory holds exactly what the catalog generates."""
        return not self.stale

    def describe_incompatibilities(self) -> list[str]:
        """One line per incompatibility, naming dataset, form and schema path."""
        return [
            f"{f.dataset} ({f.form} form, {f.relpath}): {inc}"
            for f in self.incompatible
            for inc in f.incompatibilities
        ]


def plan_export(directory: Path, catalog: Catalog = CATALOG) -> ExportPlan:
    """Compare ``directory`` with the catalog's schemas; reads only, never writes."""
    planned = [_plan_file(directory, f) for f in schema_files(catalog)]
    expected = {f.relpath for f in planned}
    for path in sorted(directory.glob(f"*/*{_SUFFIX}")):
        relpath = PurePosixPath(path.relative_to(directory).as_posix())
        if relpath not in expected:
            form = relpath.name.removesuffix(_SUFFIX)
            planned.append(FileStatus(relpath.parent.name, form, relpath, "orphan"))
    return ExportPlan(directory=directory, files=tuple(planned))


def _plan_file(directory: Path, file: SchemaFile) -> FileStatus:
    text = file.text
    path = directory / file.relpath
    if not path.is_file():
        return FileStatus(file.dataset, file.form, file.relpath, "created", text)
    committed = path.read_text(encoding="utf-8")
    if committed == text:
        return FileStatus(file.dataset, file.form, file.relpath, "unchanged", text)
    try:
        old = json.loads(committed)
    except json.JSONDecodeError as exc:
        problems = [Incompatibility("#", f"the committed file is not valid JSON ({exc})")]
    else:
        problems = check_backward(old, file.schema)
    return FileStatus(file.dataset, file.form, file.relpath, "changed", text, tuple(problems))


def apply_export(plan: ExportPlan) -> None:
    """Write new and changed files and remove orphans; refuses (and writes nothing) when a
    change is not backward compatible."""
    if plan.incompatible:
        names = sorted({f.dataset for f in plan.incompatible})
        bumps = ", ".join(f"{n} → {next_major(n)}" for n in names)
        lines = "\n".join(plan.describe_incompatibilities())
        raise SchemaCompatibilityError(
            f"not backward compatible with the committed schemas:\n{lines}\n"
            f"publish such a change as a new major version (a new dataset: {bumps})"
        )
    for file in plan.stale:
        path = plan.directory / file.relpath
        if file.text is None:
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(file.text, encoding="utf-8", newline="\n")
