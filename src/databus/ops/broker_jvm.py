"""The local broker's JVM: format its storage, launch it detached, wait until it serves.

Both Java processes run with umask 077, so that every file Kafka writes into the broker
directory (segments of resident data, checkpoints, snapshots) is private to the user;
the log they write to is created 0600 by us.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from databus.errors import BrokerError
from databus.ops.kafka_dist import tail
from databus.ops.private_files import PRIVATE_UMASK, open_private_append, write_private
from databus.ops.processes import LAUNCHED, is_alive, port_accepts

logger = logging.getLogger(__name__)

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
#: The official start script's flags with a smaller heap, fit for a laptop or CI runner.
JVM_OPTIONS = (
    "-Xms512m",
    "-Xmx1g",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
)
_FORMAT_TIMEOUT_S = 120.0
_READY_POLL_S = 0.25


@dataclass(frozen=True)
class BrokerFiles:
    """Where one local broker keeps what the JVM reads and writes."""

    broker_dir: Path
    data_dir: Path
    config_path: Path
    log4j_path: Path
    log_path: Path
    pid_path: Path

    def java_args(self, libs: Path, main_class: str) -> list[str]:
        """Logging config, classpath (Java expands the ``*``) and main class."""
        classpath = f"{libs}{os.sep}*"
        return [f"-Dlog4j2.configurationFile={self.log4j_path}", "-cp", classpath, main_class]

    def command_marker(self) -> str:
        """What the broker's command line contains, and no other process's."""
        return f"{MAIN_CLASS} {self.config_path}"


def format_storage(
    files: BrokerFiles, java: str, libs: Path, cluster_id: str, extra: list[str]
) -> None:
    """Write the KRaft metadata the broker needs before its very first start."""
    argv = [
        java,
        *files.java_args(libs, STORAGE_TOOL),
        *("format", "--cluster-id", cluster_id, "--config", str(files.config_path)),
        "--ignore-formatted",
        *extra,
    ]
    logger.info("formatting %s for cluster %s", files.data_dir, cluster_id)
    try:
        result = subprocess.run(  # noqa: S603
            argv,
            capture_output=True,
            text=True,
            timeout=_FORMAT_TIMEOUT_S,
            check=False,
            umask=PRIVATE_UMASK,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"formatting {files.data_dir} timed out") from exc
    if result.returncode != 0:
        output = tail((result.stdout + result.stderr).splitlines())
        raise BrokerError(f"cannot format {files.data_dir}:\n{output}")


def launch(files: BrokerFiles, java: str, libs: Path) -> int:
    """Start the JVM detached from our session, so it outlives the CLI; return its pid."""
    if files.log_path.exists():
        files.log_path.replace(files.broker_dir / "broker.log.1")
    argv = [java, *JVM_OPTIONS, *files.java_args(libs, MAIN_CLASS), str(files.config_path)]
    log = open_private_append(files.log_path)
    try:
        process = subprocess.Popen(  # noqa: S603
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=files.broker_dir,
            start_new_session=True,
            umask=PRIVATE_UMASK,
        )
    finally:
        os.close(log)
    LAUNCHED[process.pid] = process
    write_private(files.pid_path, f"{process.pid}\n")
    logger.info("launched broker pid %d, log %s", process.pid, files.log_path)
    return process.pid


def wait_until_ready(
    pid: int, port: int, timeout: float, *, bootstrap: str, log_tail: Callable[[], str]
) -> None:
    """Ready = the client port accepts TCP; it opens once the broker is unfenced."""
    deadline = time.monotonic() + timeout
    while not port_accepts(port):
        if not is_alive(pid):
            raise BrokerError(f"the broker (pid {pid}) exited during start-up; {log_tail()}")
        if time.monotonic() >= deadline:
            raise BrokerError(
                f"the broker (pid {pid}) did not open {bootstrap} within {timeout:.0f}s; "
                f"{log_tail()}"
            )
        time.sleep(_READY_POLL_S)
