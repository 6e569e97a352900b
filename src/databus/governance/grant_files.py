"""Grant files on disk: reading entries with their line numbers, appending requests.

A grant file is YAML with one key, ``grants``, a list of entries. Requests are appended
as text, so that the comments and layout reviewers know stay as they are.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from databus.errors import GrantError
from databus.governance.grants import KEYS

#: Names (agencies, datasets) that YAML reads back as the same string when unquoted.
_PLAIN = re.compile(r"^[a-z][a-z0-9._-]*$")
FILE_HEADER = """\
# Grants of {owner}'s datasets: who receives which fields, why, and until when.
# Reviewed like code: {owner} approves a grant by merging it. Checked by
# `databus grants check`; see docs/governance.md.
grants:
"""


@dataclass(frozen=True)
class Entry:
    """One grant entry as written, and where: ``file, grant N (line L)``."""

    data: object
    origin: str


def display(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter errors)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_entries(path: Path) -> list[Entry]:
    """The entries of one grant file; :class:`GrantError` if it is not one."""
    name = display(path)
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as invalid:
        mark = invalid.problem_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise GrantError([f"{name}:{where}: not valid YAML: {invalid.problem}"]) from None
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as invalid:
        raise GrantError([f"{name}: not a valid grant file: {invalid}"]) from None
    if document is None:
        return []
    if not isinstance(document, dict) or set(document) != {"grants"}:
        raise GrantError([f"{name}: a grant file has one key, grants: a list of grants"])
    entries = [] if document["grants"] is None else document["grants"]
    if not isinstance(entries, list):
        raise GrantError([f"{name}: grants must be a list (one '- consumer: ...' per grant)"])
    lines = _entry_lines(root, len(entries))
    return [
        Entry(data, f"{name}, grant {number} (line {line})")
        for number, (data, line) in enumerate(zip(entries, lines, strict=True), start=1)
    ]


def _entry_lines(root: yaml.Node | None, count: int) -> list[int]:
    """The line (1-based) where each entry begins, from the composed YAML nodes."""
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "grants" and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    return [0] * count


def entry_text(entry: Mapping[str, Any], *, comment: str | None = None) -> str:
    """A grant entry as a block of the ``grants`` list (keys in the usual order)."""
    lines = [f"  # {comment}"] if comment else []
    prefix = "  - "
    for key in KEYS:
        if key not in entry or entry[key] is None:
            continue
        lines.append(f"{prefix}{key}: {_scalar(entry[key])}")
        prefix = "    "
    return "\n".join(lines) + "\n"


def _scalar(value: object) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _PLAIN.match(value) and yaml.safe_load(value) == value:
        return value  # a name that YAML reads back as itself ("no" would be False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML scalar


def append_entry(path: Path, owner: str, text: str) -> None:
    """Append an entry's text to the ``grants`` list of ``path``, creating the file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FILE_HEADER.format(owner=owner) + text, encoding="utf-8")
        return
    current = path.read_text(encoding="utf-8")
    document = yaml.safe_load(current)
    if document is None or document == {"grants": None}:
        current = current.rstrip("\n") + ("\n" if current.strip() else "")
        if "grants:" not in current:
            current += "grants:\n"
    elif document == {"grants": []} and "grants: []" in current:
        current = current.replace("grants: []", "grants:", 1)
    else:
        _check_grants_come_last(path, current)
    if not current.endswith("\n"):
        current += "\n"
    path.write_text(current + text, encoding="utf-8")


def _check_grants_come_last(path: Path, text: str) -> None:
    """Text appended to the file lands in the list only if the list ends the file."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode):
        key, value = root.value[-1]
        if key.value == "grants" and isinstance(value, yaml.SequenceNode) and not value.flow_style:
            return
    raise GrantError([f"{display(path)}: cannot append: write 'grants:' as a block list"])
