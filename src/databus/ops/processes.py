"""Processes and ports of the local broker: is it ours, is it alive, stop it, free ports.

Only processes recognised by their command line are ever signalled, and processes this
Python process launched are reaped (no zombies).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from databus.errors import BrokerError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_PROC = Path("/proc")

#: Processes launched by this Python process, kept so they are reaped (no zombies).
LAUNCHED: dict[int, subprocess.Popen[bytes]] = {}


def terminate(pid: int, timeout: float, *, kill_timeout: float, what: str) -> None:
    """SIGTERM for a clean shutdown, SIGKILL if it does not come in time."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, kill_timeout)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not is_alive(pid):
            LAUNCHED.pop(pid, None)
            return
        logger.warning("%s (pid %d) ignored %s", what, pid, sig.name)
    raise BrokerError(f"{what} (pid {pid}) survived SIGKILL")


def command_line(pid: int) -> str | None:
    """The process's arguments joined by spaces; ``None`` if gone or a zombie."""
    if not is_alive(pid):
        return None
    if not _PROC.is_dir():
        return _ps_command_line(pid)
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def _ps_command_line(pid: int) -> str | None:
    """Fallback for systems without ``/proc`` (macOS)."""
    ps = shutil.which("ps")
    if ps is None:
        return None
    argv = [ps, "-ww", "-o", "command=", "-p", str(pid)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    return result.stdout.strip() or None if result.returncode == 0 else None


def is_alive(pid: int) -> bool:
    """Alive and not a zombie; reaps processes this process launched."""
    launched = LAUNCHED.get(pid)
    if launched is not None:
        return launched.poll() is None
    if not _PROC.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports the OS reports free on loopback (for a second broker)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((host, 0))
            ports.append(int(probe.getsockname()[1]))
        return ports


def free_port_run(count: int, host: str = LOOPBACK, *, tries: int = 50) -> int:
    """The first of ``count`` consecutive ports free on loopback (a local cluster's
    nodes take successive ports)."""
    for _ in range(tries):
        (base,) = free_ports(1, host)
        if all(port_is_free(port, host) for port in range(base, base + count)):
            return base
    raise BrokerError(f"found no {count} consecutive free ports on {host}")


def port_accepts(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``port``."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection((host, port), 1.0),
    ):
        return True
    return False


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could bind ``port`` (Java sets SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
