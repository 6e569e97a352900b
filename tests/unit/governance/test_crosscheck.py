"""The cross-check: an audit record is true only if its share and its source are in the
topics as it says; a share without an audit record is reported too."""

from __future__ import annotations

from typing import Any

import orjson

from databus.governance.chain import ChainHead, StoredRecord
from databus.governance.crosscheck import (
    ShareLog,
    ShareMessage,
    SourceLog,
    claims_of,
    cross_check,
    needed_sources,
)

DEATHS = "health.death_certificate.v1"
VIEW = "share.civil.health.death_certificate.v1"
FIELDS = ["person_ref", "date_of_death"]
PERSON = "YRV5BKUWCY6BBN5F2K5ZM44F4U"


def content(ce_id: str, source_offset: int, **changes: Any) -> dict[str, Any]:
    return {
        "consumer": "civil",
        "dataset": DEATHS,
        "share_topic": VIEW,
        "person_ref": PERSON,
        "source_event_id": ce_id,
        "source_offset": source_offset,
        "fields": FIELDS,
        "purpose": "p",
        "legal_basis": None,
        "shared_at": "2026-06-01T08:00:00+00:00",
    } | changes


def audit(*contents: dict[str, Any], timestamp: int = 5_000) -> list[StoredRecord]:
    head = ChainHead.start(0)
    records = []
    for offset, item in enumerate(contents):
        record, head = head.seal(item)
        records.append(StoredRecord(0, offset, orjson.dumps(record), timestamp + offset))
    return records


def shares(*ce_ids: str, log_start: int = 0, fields: list[str] = FIELDS) -> dict[Any, ShareLog]:
    messages = [
        ShareMessage(log_start + n, ce_id, tuple(fields), 5_000 + n)
        for n, ce_id in enumerate(ce_ids)
    ]
    return {(VIEW, 0): ShareLog(log_start, messages)}


def sources(ce_ids: dict[int, str], log_start: int = 0) -> dict[Any, SourceLog]:
    return {(DEATHS, 0): SourceLog(log_start, ce_ids)}


def check(records: list[StoredRecord], share_logs: Any, source_logs: Any) -> Any:
    claims, invalid = claims_of({0: records})
    assert invalid == []
    return cross_check(claims, share_logs, source_logs)


def test_audit_records_that_match_their_shares_and_sources_pass() -> None:
    records = audit(content("a", 10), content("b", 11))
    claims, _ = claims_of({0: records})
    assert needed_sources(claims) == {(DEATHS, 0): {10, 11}}
    result = check(records, shares("a", "b"), sources({10: "a", 11: "b"}))
    assert (result.checked, result.uncheckable, result.mismatches) == (2, 0, [])


def test_a_correctly_chained_forgery_with_no_share_behind_it_is_reported() -> None:
    records = audit(content("a", 10), content("forged", 10))
    result = check(records, shares("a"), sources({10: "a"}))
    assert result.checked == 1
    (mismatch,) = result.mismatches
    assert str(mismatch).startswith("audit.sharing.v1[0]@1 (seq 1): no share of forged in ")
    assert "no share behind it" in str(mismatch)


def test_a_share_with_no_audit_record_is_reported() -> None:
    result = check(audit(content("a", 10)), shares("a", "hidden"), sources({10: "a"}))
    (mismatch,) = result.mismatches
    assert str(mismatch) == f"{VIEW}[0]@1: the share of hidden has no audit record"


def test_a_second_audit_record_of_one_share_is_reported() -> None:
    records = audit(content("a", 10), content("a", 10))
    result = check(records, shares("a"), sources({10: "a"}))
    assert [m.where for m in result.mismatches] == ["audit.sharing.v1[0]@1 (seq 1)"]


def test_fields_other_than_the_audited_ones_are_reported() -> None:
    result = check(
        audit(content("a", 10)),
        shares("a", fields=[*FIELDS, "institution_code"]),
        sources({10: "a"}),
    )
    (mismatch,) = result.mismatches
    assert "holds fields ['person_ref', 'date_of_death', 'institution_code']" in mismatch.reason


def test_a_source_that_is_not_the_one_named_is_reported() -> None:
    records = audit(content("a", 10), content("b", 12))
    result = check(records, shares("a", "b"), sources({10: "a", 12: "c"}))
    reasons = sorted(m.reason for m in result.mismatches)
    assert reasons == [f"the source record at {DEATHS}[0]@12 is c, not b"]
    result = check(records, shares("a", "b"), sources({10: "a"}))
    assert [m.reason for m in result.mismatches] == [
        f"no source record at {DEATHS}[0]@12: the audit record names none"
    ]


def test_what_retention_removed_is_uncheckable_not_false() -> None:
    """Share topics keep 30 days, evidence 400: old claims cannot be checked, and are
    counted as such; a newer claim missing its share is still reported."""
    records = audit(content("old", 3), content("a", 10), content("new-forged", 11))
    share_logs = {(VIEW, 0): ShareLog(5, [ShareMessage(5, "a", tuple(FIELDS), 5_001)])}
    result = check(records, share_logs, sources({10: "a", 11: "x"}, log_start=5))
    assert result.checked == 1
    assert result.uncheckable == 1
    assert [m.where for m in result.mismatches] == ["audit.sharing.v1[0]@2 (seq 2)"]


def test_an_audit_record_naming_the_wrong_share_topic_is_reported() -> None:
    records = audit(content("a", 10, share_topic="share.police.health.death_certificate.v1"))
    result = check(records, shares(), sources({10: "a"}))
    (mismatch,) = result.mismatches
    assert "is not share.civil.health.death_certificate.v1" in mismatch.reason


def test_a_chained_record_that_is_no_sharing_audit_record_is_reported() -> None:
    head = ChainHead.start(0)
    record, _ = head.seal({"consumer": "civil"})
    claims, invalid = claims_of({0: [StoredRecord(0, 0, orjson.dumps(record))]})
    assert claims == []
    (mismatch,) = invalid
    assert mismatch.where == "audit.sharing.v1[0]@0"
    assert mismatch.reason.startswith("not a sharing audit record (")
