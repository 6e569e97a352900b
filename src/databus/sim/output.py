"""Writing a simulation to files: one NDJSON file per dataset, named after the dataset,
so that ``databus publish <dataset> <dir>/<dataset>.ndjson`` publishes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO

import orjson

from databus.catalog import CATALOG
from databus.sim.province import Day, Province


def dataset_file(directory: Path, dataset: str) -> Path:
    """The file that holds ``dataset``'s records."""
    return directory / f"{dataset}.ndjson"


def write_ndjson(
    province: Province, directory: Path, *, on_day: Callable[[Day], None] | None = None
) -> dict[str, Path]:
    """Write the roster and then every day into ``directory`` (created if missing; files
    of the same names are replaced), one file per source dataset, empty ones included.
    Returns the files by dataset."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {dataset.name: dataset_file(directory, dataset.name) for dataset in CATALOG.sources()}
    streams: dict[str, IO[bytes]] = {}
    try:
        for dataset, path in paths.items():
            streams[dataset] = path.open("wb")
        for record in province.roster():
            streams[record.dataset].write(orjson.dumps(record.values) + b"\n")
        for day in province.days():
            for record in day.records:
                streams[record.dataset].write(orjson.dumps(record.values) + b"\n")
            if on_day is not None:
                on_day(day)
    finally:
        for stream in streams.values():
            stream.close()
    return paths
