"""One data directory per running worker, held with a lock for as long as it runs.

A worker's RocksDB tables may be opened by one process only (RocksDB's own ``LOCK``
file). Several workers on one machine therefore each need a directory of their own:
without ``--data-dir`` a worker takes the first free *slot* under the state dir
(``worker``, then ``worker-2``, ``worker-3``, ...), so a restarted worker usually finds
its previous tables again; with ``--data-dir`` it takes that directory or refuses,
naming the worker that has it.

The lock is an advisory ``flock`` on ``worker.lock`` in the directory: the kernel
releases it when the process ends, however it ends (kill -9 included), so a crash never
leaves a slot taken.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from databus.errors import DatabusError
from databus.ops.private_files import FILE_MODE, private_dir

LOCK_NAME = "worker.lock"
#: More workers than this on one machine with the default directory is a mistake.
MAX_SLOTS = 64


@dataclass
class HeldDataDir:
    """A data directory this process holds; the lock goes with the descriptor."""

    path: Path
    descriptor: int

    def release(self) -> None:
        os.close(self.descriptor)


def take_data_dir(path: Path) -> HeldDataDir:
    """Hold ``path`` for this process, or refuse: another worker uses it."""
    held = _try_lock(path)
    if held is None:
        holder = _holder(path)
        raise DatabusError(
            f"another worker{holder} is using the data dir {path}: give each worker its own "
            "--data-dir, or leave the option out to get a free one"
        )
    return held


def take_free_slot(root: Path, name: str = "worker") -> HeldDataDir:
    """Hold the first free slot under ``root``: ``name``, ``name-2``, ``name-3``, ..."""
    for slot in range(1, MAX_SLOTS + 1):
        path = root / (name if slot == 1 else f"{name}-{slot}")
        held = _try_lock(path)
        if held is not None:
            return held
    raise DatabusError(
        f"{MAX_SLOTS} workers already run with data dirs under {root}: "
        "pass --data-dir to start another"
    )


def _try_lock(path: Path) -> HeldDataDir | None:
    private_dir(path)
    descriptor = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    return HeldDataDir(path, descriptor)


def _holder(path: Path) -> str:
    try:
        pid = (path / LOCK_NAME).read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
