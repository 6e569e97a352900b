"""``databus publish DATASET FILE``: validate, pseudonymise and publish an agency file.

What it prints and writes names only the dataset's fields and masks anything like an ID
number; a CSV file whose header is not the dataset's columns is refused whole.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import IO

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from databus import metrics
from databus.cli.options import metrics_host_option
from databus.client.files import FileFormat, read_lines
from databus.client.publisher import Publisher, PublishSummary
from databus.identity import mask_id_like
from databus.settings import Settings
from databus.wire import Rejection

#: How many rejection reasons are echoed to the terminal; all go to the files.
SHOWN_REJECTIONS = 10
#: Files at least this large get a progress bar.
PROGRESS_BYTES = 1_000_000


class _RejectionSink:
    """Writes rejections to ``<file>.rejected.ndjson`` and shows the first few."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: IO[bytes] | None = None
        self._shown = 0
        path.unlink(missing_ok=True)

    def __call__(self, rejection: Rejection) -> None:
        if self._stream is None:
            self._stream = self.path.open("wb")
        self._stream.write(rejection.to_record().model_dump_json().encode() + b"\n")
        if self._shown < SHOWN_REJECTIONS:
            click.echo(f"rejected {rejection.summary()}", err=True)
            self._shown += 1

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


async def _publish(
    settings: Settings,
    *,
    dataset: str,
    path: Path,
    file_format: FileFormat | None,
    source: str | None,
    sink: _RejectionSink,
    progress: bool,
) -> PublishSummary:
    async with Publisher(settings, source=source) as publisher:
        lines = read_lines(path, file_format, columns=publisher.intake(dataset).columns)
        if not progress:
            return await publisher.publish_many(dataset, lines, on_rejection=sink, origin=path.name)
        with Progress(
            TextColumn(f"publishing {mask_id_like(path.name)}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("lines", total=_count_lines(path))
            return await publisher.publish_many(
                dataset,
                lines,
                on_rejection=sink,
                on_progress=lambda done: bar.update(task, completed=done),
                origin=path.name,
            )


def _count_lines(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in stream)


@click.command()
@click.argument("dataset")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["ndjson", "csv"]),
    help="Input format (default: from the file name; .csv is CSV, else NDJSON).",
)
@click.option(
    "--source",
    help="Publishing agency (ce_source); default: the dataset's owner. With SASL it is the "
    "user name, and naming another agency is refused.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on for large files)."
)
@click.option(
    "--metrics-port", type=int, help="Serve Prometheus metrics on this port while publishing."
)
@metrics_host_option
@click.pass_obj
def publish(
    settings: Settings,
    *,
    dataset: str,
    file: Path,
    file_format: FileFormat | None,
    source: str | None,
    progress: bool | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Publish every line of FILE to DATASET; rejected lines go to the dead-letter topic
    and to FILE.rejected.ndjson. Exits 1 when anything was rejected."""
    if metrics_port is not None:
        metrics.serve(metrics_port, metrics_host)
    sink = _RejectionSink(file.with_name(file.name + ".rejected.ndjson"))
    show_progress = progress if progress is not None else file.stat().st_size >= PROGRESS_BYTES
    try:
        summary = asyncio.run(
            _publish(
                settings,
                dataset=dataset,
                path=file,
                file_format=file_format,
                source=source,
                sink=sink,
                progress=show_progress,
            )
        )
    finally:
        sink.close()
    click.echo(f"{dataset}: accepted {summary.accepted}, rejected {summary.rejected}")
    if summary.rejected:
        shown = mask_id_like(str(sink.path))
        click.echo(f"rejected lines and reasons: {shown} and topic dlq.rejected.v1", err=True)
        sys.exit(1)
