"""The grants a running worker applies, re-read when their files change.

Merging a grant (or its expiry, or its removal) takes effect in a running share worker
within seconds, without a restart. A change that does not load is reported and
ignored: the worker keeps applying the last valid grants (each still expires on its
day) rather than guess.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from databus.catalog import CATALOG, Catalog
from databus.errors import GrantError
from databus.governance.grants import GrantSet, load_grants

log = logging.getLogger(__name__)

#: How often the files' modification times are looked at.
CHECK_EVERY_S = 1.0

_Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class GrantFiles:
    """Which grant files were read, and a SHA-256 of their names and contents: what the
    ``grants.applied`` operations record names."""

    names: tuple[str, ...]
    digest: str


def grant_files(path: Path) -> GrantFiles:
    """The grant files at ``path`` (a file, or a directory of ``*.yaml``) and their digest."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    names = []
    for file in files:
        try:
            content = file.read_bytes()
        except FileNotFoundError:
            continue
        names.append(file.name)
        digest.update(file.name.encode() + b"\0" + hashlib.sha256(content).digest())
    return GrantFiles(tuple(names), digest.hexdigest())


class GrantsWatcher:
    """Loads the grants once (an invalid file is an error then), and again on change."""

    def __init__(
        self,
        path: Path,
        catalog: Catalog = CATALOG,
        *,
        check_every_s: float = CHECK_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._catalog = catalog
        self._every = check_every_s
        self._monotonic = monotonic
        self._fingerprint: _Fingerprint | None = self._files()
        self.files = grant_files(path)
        """The files the grants in force were loaded from (checked unchanged by loading)."""
        self.grants: GrantSet = load_grants(path, catalog)
        if grant_files(path) != self.files:  # changed while loading: the next check reloads
            self._fingerprint = None
        self._next_check = monotonic() + check_every_s

    def _files(self) -> _Fingerprint:
        files = sorted(self.path.glob("*.yaml")) if self.path.is_dir() else [self.path]
        stamps = []
        for file in files:
            try:
                stat = file.stat()
            except FileNotFoundError:
                continue
            stamps.append((file.name, stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def refresh(self) -> bool:
        """Re-read the grants if a file changed; whether the grants in force changed."""
        now = self._monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self._every
        fingerprint = self._files()
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        files = grant_files(self.path)
        try:
            grants = load_grants(self.path, self._catalog)
        except GrantError as invalid:
            log.error("the grant files changed but do not load; still applying the previous "
                      "grants:\n%s", invalid)  # fmt: skip
            return False
        if grant_files(self.path) != files:
            self._fingerprint = None  # changed while loading: load again at the next check
            return False
        self.grants = grants
        self.files = files
        log.warning("grants reloaded from %s: %d grants", self.path, len(grants))
        return True
