"""Publish throughput on a local three-broker cluster against one broker, same run.

Both are started by the project's own code (``LocalBroker``, ``LocalCluster``) on this
machine; ``topics apply`` gives the cluster's topics 3 replicas with
``min.insync.replicas=2`` and the single broker's 1. ``Publisher.publish_many`` sends
the same records to each, in interleaved rounds (single, cluster, single, ...), and the
ratio of each round's cluster rate to the single-broker rate beside it is reported: on
one machine the three brokers share its cores, so this measures the cost of replication
(every record written three times, acknowledged after two), not what three machines
would give.

    PYTHONPATH=bench:. .venv/bin/python bench/publish_cluster.py [--records N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from databus.ops.broker import LocalBroker
from databus.ops.cluster import PORT_STEP, LocalCluster
from databus.ops.kafka_dist import KAFKA_VERSION
from databus.ops.processes import free_port_run, free_ports
from databus.ops.topics import apply_topics
from databus.settings import Settings
from publish_throughput import (
    PSEUDONYM_KEY,
    log,
    machine,
    make_lines,
    send_publisher,
)


@contextmanager
def single(state_dir: Path) -> Iterator[str]:
    port, controller = free_ports(2)
    broker = LocalBroker(state_dir, Settings().cache_dir, port, controller)
    try:
        yield broker.start()
    finally:
        broker.stop()


@contextmanager
def cluster(state_dir: Path) -> Iterator[str]:
    base = free_port_run(PORT_STEP * 3)
    local = LocalCluster(state_dir, Settings().cache_dir, 3, base, base + 1)
    try:
        yield local.start()
    finally:
        local.stop()


def settings_for(bootstrap: str) -> Settings:
    return Settings(bootstrap_servers=bootstrap, pseudonym_key=PSEUDONYM_KEY, demo=False)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--records", type=int, default=150_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    command = " ".join(
        ["PYTHONPATH=bench:. .venv/bin/python bench/publish_cluster.py", *sys.argv[1:]]
    )
    lines = make_lines(args.records)
    with tempfile.TemporaryDirectory(prefix="databus-bench-") as tmp:
        with single(Path(tmp) / "one") as one, cluster(Path(tmp) / "three") as three:
            targets = {"one broker": settings_for(one), "three brokers": settings_for(three)}
            for settings in targets.values():
                asyncio.run(apply_topics(settings))
            rates: dict[str, list[float]] = {name: [] for name in targets}
            for round_number in range(args.rounds):
                for name, settings in targets.items():
                    timing = asyncio.run(send_publisher(settings, lines))
                    rates[name].append(args.records / timing.wall)
                    log(f"round {round_number + 1}: {name} {rates[name][-1]:,.0f} records/s")
    ratios = [c / o for c, o in zip(rates["three brokers"], rates["one broker"], strict=True)]
    print(f"Measured with `{command}`, Kafka {KAFKA_VERSION}, on:\n")
    print("\n".join(machine()) + "\n")
    print("| target | records/s per round | median |")
    print("|---|---|---|")
    for name, values in rates.items():
        shown = ", ".join(f"{v:,.0f}" for v in values)
        print(f"| {name} | {shown} | {statistics.median(values):,.0f} |")
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    print(
        f"\nThree brokers / one broker, per round: {shown} "
        f"(median {statistics.median(ratios):.2f})."
    )


if __name__ == "__main__":
    main()
