"""Reading agency files line by line: NDJSON and CSV.

Every data line becomes one :class:`Line`, so that *accepted + rejected = lines read*
holds by construction: a reader never drops, merges or skips a line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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


def detect_format(path: Path) -> FileFormat:
    """Guess the format from the file name: ``.csv`` is CSV, anything else NDJSON."""
    return "csv" if path.suffix.lower() == ".csv" else "ndjson"


def read_lines(path: Path, file_format: FileFormat | None = None) -> Iterator[Line]:
    """Yield every data line of ``path`` (the CSV header is not a data line)."""
    if (file_format or detect_format(path)) == "csv":
        yield from _read_csv(path)
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


def _read_csv(path: Path) -> Iterator[Line]:
    header: list[str] | None = None
    header_problem: str | None = None
    for number, raw in _split(path):
        if header is None:
            header = _parse_header(raw)
            header_problem = _header_problem(header)
            continue
        problem = header_problem or _line_problem(raw)
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


def _header_problem(header: list[str]) -> str | None:
    """A header that makes every row ambiguous: a column named twice."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            return f"the header names column {name!r} twice; which value is meant is unclear"
        seen.add(name)
    return None


def _parse_header(raw: bytes) -> list[str]:
    text = raw.removeprefix(BOM).decode("utf-8", errors="replace")
    return [name.strip() for name in next(csv.reader([text]), [])]
