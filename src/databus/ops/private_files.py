"""Files only their owner may read: the broker's data, config, secrets, logs and pid file.

The broker directory holds resident data (topic segments) and secrets, so every directory
we make there is 0700 and every file 0600, whatever the caller's umask; processes we start
there run with umask 077 so that what they write is private too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: The umask of the processes that write into the broker directory (Kafka's JVM).
PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) and leave ``path`` itself 0700."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, replacing any previous content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)  # an existing file keeps its mode otherwise
        handle.write(text)


def open_private_append(path: Path) -> int:
    """A descriptor appending to ``path``, created (or left) 0600; the caller closes it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)
    return descriptor


def make_tree_private(root: Path) -> int:
    """Set every directory under ``root`` to 0700 and every file to 0600 (a state dir made
    by an older databus, or touched by hand); symbolic links are left alone. Returns how
    many modes changed."""
    changed = 0
    for directory, _, files in os.walk(root):
        for path, mode in [(directory, DIR_MODE)] + [
            (os.path.join(directory, name), FILE_MODE) for name in files
        ]:
            info = _lstat(path)
            if info is None or stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) == mode:
                continue
            os.chmod(path, mode)
            changed += 1
    return changed


def loose_modes(root: Path) -> list[str]:
    """Paths under ``root`` (``root`` included) that others may read, write or enter."""
    found = []
    for directory, _, files in os.walk(root):
        for path in [directory, *(os.path.join(directory, name) for name in files)]:
            info = _lstat(path)
            if info is not None and not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
                found.append(f"{path} {stat.S_IMODE(info.st_mode):04o}")
    return found


def _lstat(path: str) -> os.stat_result | None:
    """``None`` for a file removed while we walk (a running broker deletes segments)."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
