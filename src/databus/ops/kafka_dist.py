"""The Kafka distribution: broker and tool jars fetched from Maven Central and cached.

``deploy/kafka/pom.xml`` lists the artifacts; Maven copies every runtime jar into
``<cache_dir>/kafka-<version>/libs``. Kafka's own tools (ProducerPerformance, AclCommand,
...) run from the same classpath.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from databus.errors import BrokerError

logger = logging.getLogger(__name__)

#: The Kafka release we assemble; passed to Maven so the pom and the cache agree.
KAFKA_VERSION = "4.3.1"
#: Environment variable that points at another ``pom.xml`` (e.g. outside a checkout).
POM_ENV_VAR = "DATABUS_KAFKA_POM"
DOCKER_HINT = "or run Kafka in Docker instead: `docker compose up kafka`"
_COMPLETE_MARKER = "libs.complete"
_MAVEN_TIMEOUT_S = 1800.0
_LOG_TAIL_LINES = 40


def tail(lines: list[str], count: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(lines[-count:]) or "(no output)"


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Serialise concurrent starts and downloads (two terminals, parallel test runs).

    The lock file is 0600: it may sit in the private broker directory."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def require_tool(name: str) -> str:
    """The absolute path of ``name`` on PATH, or an error that offers Docker instead."""
    path = shutil.which(name)
    if path is None:
        raise BrokerError(
            f"`{name}` is not on PATH: the local broker needs Java 17+ and Maven "
            f"(only for the first download); {DOCKER_HINT}"
        )
    return path


def find_kafka_pom() -> Path:
    """The pom that assembles the broker.

    ``$DATABUS_KAFKA_POM`` if set, else the checkout's ``deploy/kafka/pom.xml``, else
    the copy a wheel installs next to this module.
    """
    override = os.environ.get(POM_ENV_VAR)
    if override:
        candidates = [Path(override).expanduser()]
    else:
        here = Path(__file__).resolve()
        candidates = [
            here.parents[3] / "deploy" / "kafka" / "pom.xml",
            here.parent / "kafka" / "pom.xml",
        ]
    for pom in candidates:
        if pom.is_file():
            return pom
    raise BrokerError(
        f"cannot find the Kafka pom at {' or '.join(map(str, candidates))}: run from a "
        f"databus checkout or set {POM_ENV_VAR} to deploy/kafka/pom.xml; {DOCKER_HINT}"
    )


def cached_kafka_libs(cache_dir: Path) -> Path | None:
    """The cached jar directory if a previous download completed, else ``None``."""
    home = cache_dir / f"kafka-{KAFKA_VERSION}"
    libs = home / "libs"
    return libs if (home / _COMPLETE_MARKER).is_file() and libs.is_dir() else None


def ensure_kafka_libs(cache_dir: Path) -> Path:
    """The directory of every runtime jar of Kafka and its tools, fetched on first use.

    The completion marker is written only after Maven succeeded, so an interrupted
    download is redone instead of leaving a broken classpath behind.
    """
    cached = cached_kafka_libs(cache_dir)
    if cached is not None:
        return cached
    mvn = require_tool("mvn")
    pom = find_kafka_pom()
    home = cache_dir / f"kafka-{KAFKA_VERSION}"
    home.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(home / "libs.lock"):
        cached = cached_kafka_libs(cache_dir)
        if cached is not None:
            return cached
        libs, partial = home / "libs", home / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(libs, ignore_errors=True)
        logger.info("fetching Kafka %s jars with Maven into %s", KAFKA_VERSION, libs)
        _run_maven(mvn, pom, partial)
        if not any(partial.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"Maven ran but {partial} holds no kafka_2.13 jar; check {pom}")
        partial.rename(libs)
        (home / _COMPLETE_MARKER).write_text(f"{KAFKA_VERSION}\n")
    return libs


def _run_maven(mvn: str, pom: Path, destination: Path) -> None:
    argv = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "package",
        f"-Dkafka.libs={destination}",
        f"-Dkafka.version={KAFKA_VERSION}",
    ]
    try:
        result = subprocess.run(  # noqa: S603
            argv, capture_output=True, text=True, timeout=_MAVEN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"Maven did not finish within {_MAVEN_TIMEOUT_S:.0f}s") from exc
    if result.returncode != 0:
        output = tail((result.stdout + result.stderr).splitlines())
        raise BrokerError(
            f"Maven could not fetch the Kafka jars (exit {result.returncode}):\n{output}"
        )
