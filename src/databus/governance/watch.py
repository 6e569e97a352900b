"""The grants a running worker applies, re-read when their files change.

Merging a grant (or its expiry, or its removal) takes effect in a running share worker
within seconds, without a restart. A change that does not load is reported and
ignored: the worker keeps applying the last valid grants (each still expires on its
day) rather than guess.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from databus.catalog import CATALOG, Catalog
from databus.governance.grants import GrantError, GrantSet, load_grants

log = logging.getLogger(__name__)

#: How often the files' modification times are looked at.
CHECK_EVERY_S = 1.0

_Fingerprint = tuple[tuple[str, int, int], ...]


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
        self._fingerprint = self._files()
        self.grants: GrantSet = load_grants(path, catalog)
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
        try:
            grants = load_grants(self.path, self._catalog)
        except GrantError as invalid:
            log.error("the grant files changed but do not load; still applying the previous "
                      "grants:\n%s", invalid)  # fmt: skip
            return False
        self.grants = grants
        log.warning("grants reloaded from %s: %d grants", self.path, len(grants))
        return True
