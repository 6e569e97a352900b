"""Data directories held one per worker process (databus.ops.data_dirs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from databus.errors import DatabusError
from databus.ops.data_dirs import LOCK_NAME, take_data_dir, take_free_slot

HOLD = """
import sys, time
from pathlib import Path
from databus.ops.data_dirs import take_data_dir
take_data_dir(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def test_free_slots_are_taken_in_order_and_given_back(tmp_path: Path) -> None:
    first = take_free_slot(tmp_path)
    second = take_free_slot(tmp_path)
    assert (first.path.name, second.path.name) == ("worker", "worker-2")
    assert (first.path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert oct(first.path.stat().st_mode & 0o777) == "0o700"
    first.release()
    again = take_free_slot(tmp_path)
    assert again.path.name == "worker"
    third = take_free_slot(tmp_path)
    assert third.path.name == "worker-3"
    for held in (second, again, third):
        held.release()


def test_a_directory_held_by_another_process_is_refused_with_its_pid(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    command = [sys.executable, "-c", HOLD, str(target)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "held\n"
            with pytest.raises(DatabusError) as refused:
                take_data_dir(target)
            assert str(refused.value) == (
                f"another worker (pid {holder.pid}) is using the data dir {target}: give "
                "each worker its own --data-dir, or leave the option out to get a free one"
            )
            other = take_free_slot(tmp_path, "mine")
            assert other.path.name == "mine-2"
            other.release()
        finally:
            holder.kill()
    # The kernel drops a killed process's lock: the directory is free again.
    take_data_dir(target).release()
