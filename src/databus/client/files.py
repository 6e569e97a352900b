"""Reading agency files line by line: NDJSON and CSV.

Every data line becomes one :class:`Line`, so that *accepted + rejected = lines read*
holds by construction: a reader never drops, merges or skips a line. A CSV file whose
header is not the dataset's columns is refused whole: its header line too becomes a
rejected line, since a file without a header has its first record there.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

FileFormat = Literal["ndjson", "csv"]
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Line:
    """One data line of an input file.

    ``fields`` is set for CSV rows (all values are strings; empty cells are left out);
    ``problem`` is set when the reader itself found the line unusable.
    """

    number: int
    raw: bytes
    fields: dict[str, str] | None = None
    problem: str | None = None
    problem_kind: str = "line"
    """The kind of the problem (:data:`databus.records.dlq.REASON_KINDS`)."""


@dataclass(frozen=True, slots=True)
class Columns:
    """The columns a CSV header of one dataset may name, and those it must name."""

    dataset: str
    allowed: frozenset[str]
    required: tuple[str, ...]
    """In the order of the dataset's fields."""

    @classmethod
    def of(cls, dataset: str, model: type[BaseModel]) -> Columns:
        """The input columns of ``dataset``, whose agency form is ``model``."""
        fields = model.model_fields
        required = tuple(name for name, info in fields.items() if info.is_required())
        return cls(dataset, frozenset(fields), required)


def detect_format(path: Path) -> FileFormat:
    """Guess the format from the file name: ``.csv`` is CSV, anything else NDJSON."""
    return "csv" if path.suffix.lower() == ".csv" else "ndjson"


def read_lines(
    path: Path, file_format: FileFormat | None = None, *, columns: Columns | None = None
) -> Iterator[Line]:
    """Yield every data line of ``path`` (the CSV header is not a data line, unless the
    file is refused for it). ``columns`` is what a CSV header must be."""
    if (file_format or detect_format(path)) == "csv":
        yield from _read_csv(path, columns)
    else:
        yield from _read_ndjson(path)


def _split(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            yield number, raw.rstrip(b"\r\n")


def _read_ndjson(path: Path) -> Iterator[Line]:
    for number, raw in _split(path):
        yield Line(number, raw, problem=_line_problem(raw))


def _line_problem(raw: bytes) -> str | None:
    if not raw.strip():
        return "empty line"
    if raw.startswith(BOM):
        return "line starts with a UTF-8 byte order mark; save the file as UTF-8 without BOM"
    return None


def _read_csv(path: Path, columns: Columns | None) -> Iterator[Line]:
    header: list[str] | None = None
    header_problem: str | None = None
    for number, raw in _split(path):
        if header is None:
            header = _parse_header(raw)
            header_problem = header_problem_of(header, columns)
            if header_problem is not None:
                yield Line(number, raw, problem=header_problem, problem_kind="csv_header")
            continue
        if header_problem is not None:
            yield Line(number, raw, problem=header_problem, problem_kind="csv_header")
            continue
        problem = _line_problem(raw)
        if problem is not None:
            yield Line(number, raw, problem=problem)
            continue
        try:
            values = next(csv.reader([raw.decode("utf-8")]))
        except UnicodeDecodeError:
            yield Line(number, raw, problem="not valid UTF-8")
            continue
        except csv.Error as exc:
            yield Line(number, raw, problem=f"not valid CSV: {exc}")
            continue
        if len(values) != len(header):
            yield Line(
                number,
                raw,
                problem=f"has {len(values)} values but the header names {len(header)} columns",
            )
            continue
        fields = {name: value for name, value in zip(header, values, strict=True) if value != ""}
        yield Line(number, raw, fields=fields)


def header_problem_of(header: list[str], columns: Columns | None) -> str | None:
    """Why a CSV header makes the whole file unusable, or None.

    A column named twice, a column the dataset does not have (a data row read as the
    header, or a typo), a required column missing. The message names only the
    dataset's own columns, never a cell of the header: a cell may be an ID number.
    """
    refused = "the CSV header is not the dataset's columns"
    if columns is not None:
        refused = f"the CSV header is not the columns of {columns.dataset}"
        unknown = [name for name in header if name not in columns.allowed]
        if unknown:
            hint = (
                " (is it a data row? the header row may be missing)"
                if len(unknown) == len(header)
                else ""
            )
            return (
                f"{refused}: {_count(len(unknown), 'column')} not of the dataset{hint}; "
                "the whole file is refused"
            )
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if name in seen:
            shown = name if columns is not None else f"in position {position}"
            return (
                f"{refused}: it names the column {shown} twice, so which value is meant "
                "is unclear; the whole file is refused"
            )
        seen.add(name)
    if columns is not None:
        missing = [name for name in columns.required if name not in seen]
        if missing:
            return f"{refused}: it lacks {', '.join(missing)}; the whole file is refused"
    return None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _parse_header(raw: bytes) -> list[str]:
    text = raw.removeprefix(BOM).decode("utf-8", errors="replace")
    return [name.strip() for name in next(csv.reader([text]), [])]
