"""The audit hash chain: an intact chain verifies; one changed, deleted or moved
record is found, and the first broken link is named."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from databus.governance.chain import (
    ChainHead,
    ExpectedHead,
    StoredRecord,
    genesis,
    link,
    verify_partition,
    why_foreign,
)
from databus.governance.chain_tail import tail_of

PARTITION = 3


def chain(count: int, partition: int = PARTITION, first_offset: int = 0) -> list[StoredRecord]:
    head = ChainHead.start(partition)
    records = []
    for number in range(count):
        record, head = head.seal({"consumer": "civil", "source_offset": number, "purpose": "p"})
        records.append(StoredRecord(partition, first_offset + number, orjson.dumps(record)))
    return records


def edit(stored: StoredRecord, change: Callable[[dict[str, object]], None]) -> StoredRecord:
    record = orjson.loads(stored.value or b"")
    change(record)
    return StoredRecord(stored.partition, stored.offset, orjson.dumps(record))


def renumbered(records: list[StoredRecord]) -> list[StoredRecord]:
    """The records as a copy would hold them: consecutive offsets from 0."""
    return [StoredRecord(r.partition, offset, r.value) for offset, r in enumerate(records)]


def test_an_intact_chain_verifies() -> None:
    records = chain(5)
    report = verify_partition(PARTITION, records)
    assert report.broken is None
    assert report.records == 5
    assert report.head == orjson.loads(records[-1].value or b"")["hash"]


def test_an_empty_partition_verifies_to_its_genesis() -> None:
    report = verify_partition(PARTITION, [])
    assert report.broken is None
    assert report.head == genesis(PARTITION)


def test_sealing_chains_each_record_to_the_previous_one() -> None:
    first, head = ChainHead.start(0).seal({"a": 1})
    second, head = head.seal({"a": 2})
    assert first["seq"] == 0
    assert first["prev_hash"] == genesis(0)
    assert second["prev_hash"] == first["hash"] == link(genesis(0), first)
    assert head == ChainHead(0, 2, second["hash"])
    assert ChainHead.after(0, orjson.dumps(second)) == head


def test_the_hash_covers_every_field_but_the_hashes() -> None:
    record, _ = ChainHead.start(0).seal({"consumer": "civil", "fields": ["a", "b"]})
    assert link(record["prev_hash"], record | {"fields": ["b", "a"]}) != record["hash"]
    assert link(record["prev_hash"], record | {"hash": "f" * 64}) == record["hash"]


def swap(records: list[StoredRecord], i: int, j: int) -> list[StoredRecord]:
    copy = list(records)
    copy[i], copy[j] = copy[j], copy[i]
    return renumbered(copy)


def rehashed_change(records: list[StoredRecord], index: int) -> list[StoredRecord]:
    """Change a record and recompute its own hash: only the next link can tell."""

    def change(record: dict[str, object]) -> None:
        record["consumer"] = "police"
        record["hash"] = link(str(record["prev_hash"]), record)

    return [edit(r, change) if n == index else r for n, r in enumerate(records)]


CASES = [
    pytest.param(
        lambda rs: [edit(r, lambda x: x.update(consumer="police")) if n == 2 else r
                    for n, r in enumerate(rs)],
        2, 2, "content does not match its hash: the record was altered",
        id="changed",
    ),
    pytest.param(
        lambda rs: rehashed_change(rs, 2),
        3, 3, "does not link to the record before it",
        id="changed-and-rehashed",
    ),
    pytest.param(
        lambda rs: renumbered(rs[:2] + rs[3:]),
        2, 3, "seq 2 missing: 1 record deleted before it",
        id="deleted",
    ),
    pytest.param(
        lambda rs: renumbered(rs[1:]),
        0, 1, "seq 0 missing: 1 record deleted before it",
        id="first-deleted",
    ),
    pytest.param(
        lambda rs: renumbered(rs[:1] + rs[3:]),
        1, 3, "seq 1 to 2 missing: 2 records deleted before it",
        id="two-deleted",
    ),
    pytest.param(
        lambda rs: swap(rs, 1, 3),
        1, 3, "seq 3 where 1 was expected; seq 1 is later, at offset 3: records were reordered",
        id="reordered",
    ),
    pytest.param(
        lambda rs: renumbered(rs[:3] + rs[1:2] + rs[3:]),
        3, 1, "seq 1 where 3 was expected (already at offset 1): a record was repeated",
        id="repeated",
    ),
    pytest.param(
        lambda rs: renumbered([*rs[:2], rs[4], *rs[2:]]),
        2, 4, "seq 4 where 2 was expected; seq 2 is later, at offset 3: records were reordered",
        id="copied-forward",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("tamper", "offset", "seq", "reason"), CASES)
def test_tampering_is_found_at_the_first_broken_link(
    tamper: Callable[[list[StoredRecord]], list[StoredRecord]],
    offset: int,
    seq: int | None,
    reason: str,
) -> None:
    report = verify_partition(PARTITION, tamper(chain(6)))
    assert report.broken is not None
    assert report.broken.offset == offset
    assert report.broken.seq == seq
    assert reason in report.broken.reason
    assert str(report.broken).startswith(f"partition {PARTITION}, offset {offset}")


def test_a_chain_moved_to_another_partition_does_not_verify() -> None:
    report = verify_partition(PARTITION + 1, chain(3))
    assert report.broken is not None
    assert report.broken.offset == 0


def test_a_chain_whose_start_retention_expired_is_anchored_at_its_first_record() -> None:
    records = chain(6)[2:]
    assert verify_partition(PARTITION, records).broken is not None
    report = verify_partition(PARTITION, records, log_start=2, expires=True)
    assert report.intact
    assert report.anchored_at == 2
    tampered = [edit(r, lambda x: x.update(purpose="q")) if r.offset == 4 else r for r in records]
    broken = verify_partition(PARTITION, tampered, log_start=2, expires=True).broken
    assert broken is not None
    assert broken.offset == 4


def test_a_start_deleted_from_a_topic_that_keeps_records_forever_is_a_finding() -> None:
    """Retention is blamed only when the topic lets records expire (the super user's
    DeleteRecords used to read as 'older records deleted by retention')."""
    report = verify_partition(PARTITION, chain(6)[2:], log_start=2)
    assert report.broken is None
    assert report.anchored_at == 2
    assert not report.intact
    (finding,) = report.findings
    assert "records before offset 2 were deleted" in finding.reason
    assert "forever" in finding.reason
    emptied = verify_partition(PARTITION, [], log_start=6)
    assert [f.reason for f in emptied.findings] == [
        "records before offset 6 were deleted (the topic keeps its records forever: "
        "retention did not remove them)"
    ]


def foreign(offset: int, value: bytes) -> StoredRecord:
    return StoredRecord(PARTITION, offset, value)


def test_foreign_records_are_listed_apart_and_the_chain_goes_on_around_them() -> None:
    records = chain(4)
    mixed = [records[0], foreign(1, b"not json"), *records[1:3], foreign(4, b"{}"), records[3]]
    mixed = [StoredRecord(PARTITION, n, r.value) for n, r in enumerate(mixed)]
    report = verify_partition(PARTITION, mixed)
    assert report.broken is None
    assert report.records == 4
    assert report.head_seq == 3
    assert report.head_offset == 5
    assert [(f.offset, f.why) for f in report.foreign] == [
        (1, "not an audit record (not JSON)"),
        (4, "not an audit record (no seq)"),
    ]
    assert not report.intact
    assert why_foreign(records[0].value) is None


def heads(records: list[StoredRecord], *positions: int) -> list[ExpectedHead]:
    marks = []
    for index in positions:
        value = orjson.loads(records[index].value or b"")
        marks.append(ExpectedHead(PARTITION, value["seq"], value["hash"], records[index].offset))
    return marks


def test_checkpointed_heads_still_in_place_are_confirmed() -> None:
    records = chain(6)
    report = verify_partition(PARTITION, records, expect=heads(records, 2, 5))
    assert report.intact
    assert report.confirmed == 2


def rebuilt_from_genesis(count: int) -> list[StoredRecord]:
    """The topic deleted and written again from the public genesis, other content."""
    head = ChainHead.start(PARTITION)
    records = []
    for number in range(count):
        record, head = head.seal({"consumer": "civil", "source_offset": number, "purpose": "x"})
        records.append(StoredRecord(PARTITION, number, orjson.dumps(record)))
    return records


CHECKPOINT_CASES = [
    pytest.param(lambda rs: rs[:3], "the chain ends at seq 2 (offset 2): records were deleted "
                 "from its end, or the topic was rebuilt", id="newest-deleted"),
    pytest.param(lambda rs: rebuilt_from_genesis(6), "checkpointed history was rewritten",
                 id="rebuilt-from-genesis"),
    pytest.param(lambda rs: rebuilt_from_genesis(2), "the chain ends at seq 1",
                 id="rebuilt-shorter"),
    pytest.param(lambda rs: [StoredRecord(PARTITION, r.offset + 3, r.value) for r in rs],
                 "is at offset 7, the checkpoint saw it at offset 4: the topic was rebuilt",
                 id="copied-to-other-offsets"),
    pytest.param(lambda rs: [], "the partition holds no audit record", id="emptied"),
]  # fmt: skip


@pytest.mark.parametrize(("rewrite", "reason"), CHECKPOINT_CASES)
def test_history_a_checkpoint_vouches_for_cannot_be_rewritten_unnoticed(
    rewrite: Callable[[list[StoredRecord]], list[StoredRecord]], reason: str
) -> None:
    records = chain(6)
    rewritten = rewrite(records)
    assert verify_partition(PARTITION, rewritten).broken is None  # the chain alone: intact
    report = verify_partition(PARTITION, rewritten, expect=heads(records, 4))
    assert report.confirmed == 0
    (finding,) = report.findings
    assert reason in finding.reason


def test_a_checkpointed_head_deleted_with_the_start_is_named() -> None:
    records = chain(6)
    report = verify_partition(PARTITION, records[4:], log_start=4, expires=True,
                              expect=heads(records, 2))  # fmt: skip
    (finding,) = report.findings
    assert "checkpointed seq 2 (offset 2) is gone: the chain now starts at offset 4" in (
        finding.reason
    )


def test_a_checkpointed_head_after_a_broken_link_is_not_reached() -> None:
    records = chain(6)
    tampered = [edit(r, lambda x: x.update(purpose="q")) if r.offset == 1 else r for r in records]
    report = verify_partition(PARTITION, tampered, expect=heads(records, 4))
    assert report.broken is not None
    assert "not reached: the chain breaks before it" in report.findings[0].reason


def test_the_head_of_a_partition_is_read_from_its_newest_record() -> None:
    records = chain(3)
    assert ChainHead.after(PARTITION, records[-1].value).next_seq == 3
    with pytest.raises(ValueError, match="not an audit record"):
        ChainHead.after(PARTITION, b"[]")


def test_the_tail_skips_foreign_records_after_the_newest_audit_record() -> None:
    records = chain(3)
    tail = tail_of(PARTITION, [*records, foreign(3, b"junk"), foreign(4, b"[]")])
    assert tail is not None
    assert tail.head == ChainHead.after(PARTITION, records[-1].value)
    assert [(stored.offset, why) for stored, why in tail.foreign] == [
        (3, "not an audit record (not JSON)"),
        (4, "not an audit record (not a JSON object)"),
    ]
    assert tail_of(PARTITION, [foreign(0, b"junk")]) is None
