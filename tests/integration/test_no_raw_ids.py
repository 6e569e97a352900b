"""The raw resident ID number appears in no byte of any topic, and, however it was
written into the input (a key, a CSV header, a headerless CSV), in nothing the
publisher shows: terminal, ``FILE.rejected.ndjson``, dead letters, ``/metrics``."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from databus.catalog import CATALOG, DLQ
from databus.identity import contains_id_number
from databus.ops.broker import free_ports
from databus.records import Rejected
from databus.settings import Settings
from tests.factories import make_citizen_id, sample_input
from tests.integration.bus import read_events, read_raw, run_cli

pytestmark = pytest.mark.integration

FACE = "hrss.face_authentication.v1"
#: How long a piped publish may take before the test gives up (a failure, not a wait).
DEADLINE_S = 120


async def test_no_topic_contains_a_raw_id(bus_settings: Settings, tmp_path: Path) -> None:
    sources = CATALOG.sources()
    ids = [make_citizen_id("370181", dt.date(1941, 7, 9), 40 + n) for n in range(2 * len(sources))]
    for position, dataset in enumerate(sources):
        good, bad = ids[2 * position], ids[2 * position + 1]
        broken = bad[:17] + ("1" if bad[17] == "0" else "0")
        lines = [
            orjson.dumps(sample_input(dataset.name, good)),
            orjson.dumps(sample_input(dataset.name, good.lower(), occurred_at="yesterday")),
            orjson.dumps(sample_input(dataset.name, broken)),
            orjson.dumps(sample_input(dataset.name, bad) | {"surprise": bad}),
            b'{"citizen_id": "' + bad.encode() + b'"',
        ]
        path = tmp_path / f"{dataset.name}.ndjson"
        path.write_bytes(b"\n".join(lines) + b"\n")
        result = run_cli(bus_settings, "publish", dataset.name, str(path))
        assert "accepted 1, rejected 4" in result.stdout, result.stdout + result.stderr
        for shown in (result.stdout, result.stderr):
            assert not any(i in shown or broken in shown for i in ids), shown

    admin = AIOKafkaAdminClient(bootstrap_servers=bus_settings.bootstrap_servers)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    chunks = await read_raw(bus_settings, topics)
    assert len(chunks) > len(ids)
    everything = b"\x00".join(chunks)
    for citizen_id in ids:
        for form in {citizen_id, citizen_id.lower(), citizen_id[:17]}:
            assert form.encode() not in everything, f"an ID number reached the bus ({form[:6]}…)"


@dataclass(frozen=True)
class Piped:
    """What ``databus publish --metrics-port`` showed for a file it read from a pipe."""

    result: subprocess.CompletedProcess[str]
    metrics: str
    """The /metrics text once every line was rejected, while the command still ran."""
    kept: bytes
    """``FILE.rejected.ndjson``."""
    dead_letters: list[Rejected]


def _rejections(metrics: str, dataset: str) -> dict[str, float]:
    """``databus_publish_rejections_total`` of ``dataset``, by reason."""
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "databus_publish_rejections"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["dataset"] == dataset
    }


def _words_of(metrics: str) -> str:
    """Every name, help text, label name and label value of the /metrics text, without
    the sample values: a float such as ``0.04370102195809121`` is shaped like an ID
    number in digit groups, and sample values are numbers the code computed, never input.
    """
    words = []
    for family in text_string_to_metric_families(metrics):
        words += [family.name, family.documentation]
        for sample in family.samples:
            words += [sample.name, *sample.labels.keys(), *sample.labels.values()]
    return "\n".join(words)


def _open_for_writing(pipe: Path, process: subprocess.Popen[str]) -> int:
    """The pipe's write end, once ``databus publish`` has opened it to read."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            descriptor = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "databus publish never opened its input"
            time.sleep(0.05)
            continue
        os.set_blocking(descriptor, True)
        return descriptor


def _scrape_when(port: int, done: int, dataset: str, process: subprocess.Popen[str]) -> str:
    """/metrics once ``done`` rejections of ``dataset`` are counted."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text: str = response.read().decode()
        if sum(_rejections(text, dataset).values()) >= done:
            return text
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"only {_rejections(text, dataset)} counted"
        time.sleep(0.1)


def publish_through_a_pipe(
    settings: Settings, dataset: str, name: str, lines: list[bytes], tmp_path: Path
) -> Piped:
    """``databus publish DATASET PIPE --metrics-port P``, the lines written into the pipe
    and /metrics read once all are rejected, before the input ends and the command exits."""
    pipe = tmp_path / name
    os.mkfifo(pipe)
    [port] = free_ports(1)
    env = os.environ | {
        "DATABUS_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DATABUS_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value()
        if settings.pseudonym_key
        else "",
        "DATABUS_PARTITIONS": str(settings.partitions),
    }
    command = [sys.executable, "-m", "databus", "publish", dataset, str(pipe)]
    process = subprocess.Popen(
        [*command, "--no-progress", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        descriptor = _open_for_writing(pipe, process)
        with os.fdopen(descriptor, "wb") as writer:
            writer.write(b"".join(line + b"\n" for line in lines))
            writer.flush()
            metrics = _scrape_when(port, len(lines), dataset, process)
        stdout, stderr = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    kept = (tmp_path / f"{name}.rejected.ndjson").read_bytes()
    letters = asyncio.run(read_events(settings, [DLQ.name]))
    mine = [
        e.record
        for e in letters
        if isinstance(e.record, Rejected) and (e.record.source or "").startswith(f"{name}:")
    ]
    return Piped(result, metrics, kept, mine)


HIDDEN = make_citizen_id("370105", dt.date(1961, 5, 17), 41)
"""The ID number that must never be shown (it is not any record's citizen_id)."""
CITIZENS = [make_citizen_id("370181", dt.date(1952, 2, 2), n) for n in range(60, 63)]
HEADER = "citizen_id,occurred_at,channel"


def _ndjson_with_id_keys() -> list[bytes]:
    return [
        orjson.dumps(sample_input(FACE, CITIZENS[0]) | {HIDDEN: "x"}),
        orjson.dumps(sample_input(FACE, CITIZENS[1]) | {f"{HIDDEN[:6]} {HIDDEN[6:]}": 1}),
        orjson.dumps(sample_input(FACE, CITIZENS[2]) | {"note": f"id {HIDDEN}"}),
    ]


def _csv_rows() -> list[bytes]:
    return [f"{c},2024-02-10T15:20:00+08:00,app".encode() for c in (HIDDEN, *CITIZENS)]


@pytest.mark.parametrize(
    ("name", "lines"),
    [
        pytest.param("ids-as-keys.ndjson", _ndjson_with_id_keys(), id="extra-keys"),
        pytest.param("no-header.csv", _csv_rows(), id="csv-without-header"),
        pytest.param(
            "id-column.csv",
            [f"citizen_id,occurred_at,{HIDDEN}".encode(), *_csv_rows()[1:]],
            id="id-number-as-column",
        ),
    ],
)
def test_an_id_number_in_keys_or_headers_is_shown_nowhere(
    bus_settings: Settings, tmp_path: Path, name: str, lines: list[bytes]
) -> None:
    piped = publish_through_a_pipe(bus_settings, FACE, name, lines, tmp_path)
    result = piped.result
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{FACE}: accepted 0, rejected {len(lines)}" in result.stdout, result.stdout
    assert len(piped.dead_letters) == len(lines)
    reasons = [reason for letter in piped.dead_letters for reason in letter.reasons]
    fields = set(CATALOG.get(FACE).input_model.model_fields)  # type: ignore[union-attr]
    assert {reason.field for reason in reasons} <= fields | {"$", "$extra"}
    shown = {
        "terminal": result.stdout + result.stderr,
        "rejected file": piped.kept.decode(),
        "dead letters": "".join(letter.model_dump_json() for letter in piped.dead_letters),
        "metrics": piped.metrics,
        "metric names and labels": _words_of(piped.metrics),
    }
    for where, text in shown.items():
        for citizen_id in (HIDDEN, *CITIZENS):
            assert citizen_id not in text, f"{where} shows an ID number ({citizen_id[:6]}…)"
            assert citizen_id[6:17] not in text.replace(" ", ""), where
        if where != "metrics":
            assert not contains_id_number(text), where
    assert set(_rejections(piped.metrics, FACE)) <= {"$extra:extra_forbidden", "$:csv_header"}


def test_five_thousand_unknown_keys_make_one_metric_series(
    bus_settings: Settings, tmp_path: Path
) -> None:
    """The reason label is a closed set: keys the input chose never become label values."""
    lines = [
        orjson.dumps(sample_input(FACE, CITIZENS[n % 3]) | {f"key-{n}-{HIDDEN}": n})
        for n in range(5_000)
    ]
    piped = publish_through_a_pipe(bus_settings, FACE, "5000-keys.ndjson", lines, tmp_path)
    assert piped.result.returncode == 1, piped.result.stderr
    assert "accepted 0, rejected 5000" in piped.result.stdout
    assert _rejections(piped.metrics, FACE) == {"$extra:extra_forbidden": 5_000.0}
    assert HIDDEN not in piped.metrics
