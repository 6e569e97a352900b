"""A corpus of malformed agency files (tests/faults/corpus/): all rejected, none accepted.

Each file goes through ``databus publish`` against a real broker: exit code 1, every
line rejected with a reason naming its line and field, in the terminal summary, the
``.rejected.ndjson`` file and the dead-letter topic (with ID numbers masked, however they
were written), nothing on any dataset topic, and no traceback. The same lines go through
the SDK's checks in process. Two files of a few megabytes are written at run time.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from databus.catalog import CATALOG, DLQ
from databus.client.files import read_lines
from databus.client.intake import Intake
from databus.identity import ID_LIKE, Pseudonymizer, contains_id_number
from databus.internals import kafka_client
from databus.records import Rejected
from databus.settings import Settings
from databus.wire import Rejection
from tests.factories import make_citizen_id, sample_input
from tests.integration.bus import read_events, run_cli

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

CORPUS = Path(__file__).parent / "corpus"
MANIFEST: dict[str, dict[str, object]] = tomllib.loads((CORPUS / "manifest.toml").read_text())
#: What the run-time files of a few megabytes are (name, dataset, fields per line).
GIANT = "health.hospital_visit.v1"
GIANT_FILES = {
    "26-giant-line.ndjson": [["$"]],
    "27-giant-row.csv": [["$"]],
}
#: Anything shaped like an ID number, checked or not (17 to 19 digits, maybe an X).
ID_SHAPED = re.compile(rb"(?<![0-9])[0-9]{17}[0-9Xx]?(?![0-9])")


@dataclass(frozen=True)
class Published:
    """What ``databus publish`` did with one corpus file."""

    result: CompletedProcess[str]
    dead_letters: list[Rejected]
    kept: list[dict[str, object]]
    """The lines of ``<file>.rejected.ndjson``."""


def _expected(name: str) -> tuple[str, list[list[str]]]:
    """(dataset, fields each data line's rejection must name)."""
    if name in GIANT_FILES:
        return GIANT, GIANT_FILES[name]
    entry = MANIFEST[name]
    dataset, fields = entry["dataset"], entry["fields"]
    assert isinstance(dataset, str)
    assert isinstance(fields, list)
    return dataset, fields


def _write_giants(directory: Path) -> None:
    """Lines of about 2 MB: more than Kafka takes in one message (1 MB by default)."""
    citizen_id = make_citizen_id("370102", sequence=31)
    record = sample_input(GIANT, citizen_id, visit_id="V-" + "7" * 2_000_000)
    (directory / "26-giant-line.ndjson").write_bytes(orjson.dumps(record) + b"\n")
    header = ",".join(record)
    row = ",".join(str(value) for value in record.values())
    (directory / "27-giant-row.csv").write_text(f"{header}\n{row}\n")


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name in MANIFEST or p.name in GIANT_FILES)


async def _end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    """End offsets of every dataset topic agencies publish to."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(dataset.topic, p)
            for dataset in CATALOG.sources()
            for p in sorted(consumer.partitions_for_topic(dataset.topic) or ())
        ]
        if not partitions:  # metadata not loaded yet
            await kafka_client(consumer).force_metadata_update()
            partitions = [
                TopicPartition(dataset.topic, p)
                for dataset in CATALOG.sources()
                for p in sorted(consumer.partitions_for_topic(dataset.topic) or ())
            ]
        assert partitions
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return offsets
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
def corpus_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus in a directory of its own (``publish`` writes files beside its input)."""
    directory = tmp_path_factory.mktemp("corpus")
    for name in MANIFEST:
        shutil.copyfile(CORPUS / name, directory / name)
    _write_giants(directory)
    return directory


@dataclass(frozen=True)
class Corpus:
    """The outcome of publishing the whole corpus."""

    files: dict[str, Published]
    ends_before: dict[TopicPartition, int]
    ends_after: dict[TopicPartition, int]


@pytest.fixture(scope="module")
def corpus(fault_bus: Settings, corpus_copy: Path) -> Corpus:
    """Every corpus file published by the CLI (four at a time), with its outcome."""
    files = _files(corpus_copy)
    before = asyncio.run(_end_offsets(fault_bus))

    def publish(path: Path) -> CompletedProcess[str]:
        dataset, _ = _expected(path.name)
        return run_cli(fault_bus, "publish", dataset, str(path), "--no-progress")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip([p.name for p in files], pool.map(publish, files), strict=True))
    after = asyncio.run(_end_offsets(fault_bus))
    dead = [e.record for e in asyncio.run(read_events(fault_bus, [DLQ.name], idle=2))]
    outcomes = {}
    for path in files:
        kept_path = path.with_name(path.name + ".rejected.ndjson")
        kept_text = kept_path.read_bytes() if kept_path.exists() else b""
        kept = [orjson.loads(line) for line in kept_text.splitlines()]
        mine = [
            r
            for r in dead
            if isinstance(r, Rejected) and r.source and r.source.startswith(path.name + ":")
        ]
        outcomes[path.name] = Published(results[path.name], mine, kept)
    return Corpus(outcomes, before, after)


@pytest.fixture
def published(corpus: Corpus) -> dict[str, Published]:
    return corpus.files


def test_nothing_reaches_a_dataset_topic(corpus: Corpus) -> None:
    grown = {
        f"{tp.topic}[{tp.partition}]": corpus.ends_after[tp] - end
        for tp, end in corpus.ends_before.items()
        if corpus.ends_after[tp] != end
    }
    assert not grown, f"malformed lines reached dataset topics: {grown}"


def test_the_corpus_has_at_least_fifteen_kinds_and_a_manifest_entry_each() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix in {".ndjson", ".csv"}}
    assert on_disk == set(MANIFEST)
    assert len(MANIFEST) >= 15


def _data_lines(name: str, path: Path) -> list[int]:
    """Line numbers of the rejected lines: every line, except a CSV header that is read."""
    count = len(path.read_bytes().splitlines())
    header_read = path.suffix == ".csv" and not MANIFEST.get(name, {}).get("header_refused")
    return list(range(2, count + 1)) if header_read else list(range(1, count + 1))


@pytest.mark.parametrize("name", [*sorted(MANIFEST), *GIANT_FILES])
def test_publish_rejects_every_line_with_its_line_and_field(
    name: str, published: dict[str, Published], corpus_copy: Path
) -> None:
    outcome = published[name]
    dataset, fields = _expected(name)
    lines = _data_lines(name, corpus_copy / name)
    assert len(lines) == len(fields), "manifest and file disagree"
    result = outcome.result
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{dataset}: accepted 0, rejected {len(lines)}" in result.stdout, result.stdout
    first = outcome.dead_letters and sorted(outcome.dead_letters, key=lambda r: r.source or "")
    assert f"rejected {name}:" in result.stderr, first

    by_line = {int((r.source or "").rsplit(":", 1)[1]): r for r in outcome.dead_letters}
    assert sorted(by_line) == lines, "one dead letter per line, each naming its line"
    assert len(outcome.dead_letters) == len(lines)
    kept_lines = sorted(int(str(k["source"]).rsplit(":", 1)[1]) for k in outcome.kept)
    assert kept_lines == lines
    for number, expected_fields in zip(lines, fields, strict=True):
        named = {reason.field for reason in by_line[number].reasons}
        assert set(expected_fields) <= named, (number, by_line[number].reasons)
        assert all(reason.message for reason in by_line[number].reasons)
        assert by_line[number].dataset == dataset


@pytest.mark.parametrize("name", [*sorted(MANIFEST), *GIANT_FILES])
def test_no_id_number_escapes_the_publisher(
    name: str, published: dict[str, Published], corpus_copy: Path
) -> None:
    """Anything shaped like an ID number in the input is masked everywhere it is shown."""
    outcome = published[name]
    raw_ids = {m.group(0) for m in ID_SHAPED.finditer((corpus_copy / name).read_bytes())}
    kept_path = corpus_copy / (name + ".rejected.ndjson")
    kept_file = kept_path.read_bytes() if kept_path.exists() else b""
    shown = [
        outcome.result.stdout.encode(),
        outcome.result.stderr.encode(),
        kept_file,
        *(r.model_dump_json().encode() for r in outcome.dead_letters),
    ]
    for text in shown:
        for raw_id in raw_ids:
            assert raw_id not in text, f"an ID number ({raw_id[:6]!r}…) was shown"
        assert not contains_id_number(text.decode("utf-8", errors="replace")), "a disguised one"
    for record in outcome.dead_letters:
        assert not ID_LIKE.search(record.raw), record.raw[:200]
        assert len(record.model_dump_json()) < 100_000, "a dead letter repeats a huge line"


@pytest.mark.parametrize("name", [*sorted(MANIFEST), *GIANT_FILES])
def test_the_sdk_rejects_every_line_in_process(name: str, corpus_copy: Path) -> None:
    dataset, fields = _expected(name)
    intake = Intake(CATALOG.get(dataset), Pseudonymizer(b"corpus-test-key-of-at-least-32-bytes"))
    lines = read_lines(corpus_copy / name, columns=intake.columns)
    outcomes = [intake.from_line(line) for line in lines]
    assert len(outcomes) == len(fields)
    for outcome, expected_fields in zip(outcomes, fields, strict=True):
        assert isinstance(outcome, Rejection), outcome
        assert set(expected_fields) <= {reason.field for reason in outcome.reasons}
