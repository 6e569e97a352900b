"""What a local broker's data directory was formatted as, and which starts it refuses.

Two facts are fixed when ``StorageTool format`` runs and cannot change afterwards: the
security mode (users and ACLs live in the metadata log) and the cluster id (a *demo
broker* is one formatted with a ``DEMO-databus`` id, see :mod:`databus.sandbox`). Kafka's
``meta.properties`` is the source of the cluster id; our ``security`` file records the
mode. Pure apart from reading those two files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from databus.errors import BrokerError
from databus.ops.broker_security import PLAINTEXT_MODE, SECURE_MODE
from databus.sandbox import is_demo_cluster

META_PROPERTIES = "meta.properties"


@dataclass(frozen=True)
class FormattedData:
    """How a data directory was formatted."""

    cluster_id: str | None
    """From Kafka's ``meta.properties``; ``None`` if it names none (damaged)."""
    mode: str
    """:data:`PLAINTEXT_MODE` or :data:`SECURE_MODE`."""

    @property
    def demo(self) -> bool:
        """Formatted as a demo broker (the demo key works only against these)."""
        return is_demo_cluster(self.cluster_id)

    @property
    def secure(self) -> bool:
        return self.mode == SECURE_MODE


def read_properties(text: str) -> dict[str, str]:
    """The ``key=value`` lines of a Java properties file we or Kafka wrote."""
    pairs = (
        line.split("=", 1)
        for line in text.splitlines()
        if "=" in line and not line.lstrip().startswith(("#", "!"))
    )
    return {key.strip(): value.strip() for key, value in pairs}


def formatted_data(data_dir: Path, mode_path: Path) -> FormattedData | None:
    """What ``data_dir`` was formatted as; ``None`` before the first start."""
    try:
        meta = read_properties((data_dir / META_PROPERTIES).read_text(errors="replace"))
    except FileNotFoundError:
        return None
    try:
        mode = mode_path.read_text().strip()
    except FileNotFoundError:
        mode = PLAINTEXT_MODE  # formatted before secure mode existed
    return FormattedData(meta.get("cluster.id"), mode)


def refuse_other_kind(
    formatted: FormattedData | None, *, secure: bool, demo: bool, data_dir: Path
) -> None:
    """A broker keeps the mode and the kind (demo or not) it was formatted with."""
    if formatted is None:
        return
    if formatted.secure != secure:
        raise BrokerError(
            f"the broker data in {data_dir} was created in {formatted.mode} mode; start it "
            f"{'with' if formatted.secure else 'without'} --secure, or use another --state-dir"
        )
    if formatted.demo and not demo:
        raise BrokerError(
            f"the broker data in {data_dir} is a demo broker (demo cluster id); start it "
            "with --demo, or use another --state-dir"
        )
    if demo and not formatted.demo:
        raise BrokerError(
            f"the broker data in {data_dir} is not a demo broker (only an empty data "
            "directory becomes one); start it without --demo, or use another --state-dir"
        )
