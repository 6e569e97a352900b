"""Signed checkpoints: the auditor's key pair, a signature that holds only for the file
as signed and the key that signed it, and the heads it hands to verify."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import orjson
import pytest

from databus.errors import CheckpointError
from databus.governance.chain import ChainHead, StoredRecord, verify_partition
from databus.governance.checkpoint import (
    checkpoint_of,
    generate_keys,
    key_id,
    load_private_key,
    load_public_key,
    read_checkpoint,
    signed_document,
    write_checkpoint,
)

AT = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


def reports(count: int = 3) -> list:  # type: ignore[type-arg]
    head = ChainHead.start(0)
    records = []
    for number in range(count):
        record, head = head.seal({"consumer": "civil", "source_offset": number})
        records.append(StoredRecord(0, number, orjson.dumps(record)))
    records.append(StoredRecord(0, count, b"not an audit record"))
    return [verify_partition(0, records), verify_partition(1, [])]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public, _ = generate_keys(tmp_path / "keys")
    return private, public


def signed(keys: tuple[Path, Path], path: Path) -> Path:
    private = load_private_key(keys[0])
    checkpoint = checkpoint_of("audit.sharing.v1", reports(), private.public_key(), AT)
    write_checkpoint(path, signed_document(checkpoint, private))
    return path


def test_keygen_makes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    private, public, made = generate_keys(tmp_path / "keys")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes()
    assert b"PUBLIC KEY" in public.read_bytes()
    assert key_id(load_public_key(public)) == made == key_id(load_private_key(private).public_key())
    with pytest.raises(CheckpointError, match="exists: an auditor key is made once"):
        generate_keys(tmp_path / "keys")


def test_a_private_key_others_may_read_is_refused(keys: tuple[Path, Path]) -> None:
    keys[0].chmod(0o644)
    with pytest.raises(CheckpointError, match=r"may be read by others \(mode 0644\)"):
        load_private_key(keys[0])


def test_a_checkpoint_reads_back_with_every_head_and_known_foreign_record(
    keys: tuple[Path, Path], tmp_path: Path
) -> None:
    path = signed(keys, tmp_path / "cp.json")
    checkpoint = read_checkpoint(path, load_public_key(keys[1]))
    assert checkpoint.topic == "audit.sharing.v1"
    assert checkpoint.records == 3
    assert checkpoint.signed_at == "2026-06-01T08:00:00+00:00"
    (head,) = checkpoint.expected()  # the empty partition vouches for nothing
    assert (head.partition, head.seq, head.offset) == (0, 2, 2)
    assert checkpoint.foreign == ((0, 3),)
    with pytest.raises(CheckpointError, match="exists: checkpoints are kept"):
        signed(keys, path)


def tamper(path: Path, change: str) -> None:
    document = orjson.loads(path.read_bytes())
    body = document["checkpoint"]
    if change == "head":
        body["heads"][0]["hash"] = "0" * 64
    elif change == "seq":
        body["heads"][0]["seq"] = 1
    elif change == "forget-foreign":
        body["foreign"] = []
    path.write_bytes(orjson.dumps(document))


@pytest.mark.parametrize("change", ["head", "seq", "forget-foreign"])
def test_a_tampered_checkpoint_is_refused(
    keys: tuple[Path, Path], tmp_path: Path, change: str
) -> None:
    path = signed(keys, tmp_path / "cp.json")
    tamper(path, change)
    with pytest.raises(CheckpointError, match="the signature does not hold"):
        read_checkpoint(path, load_public_key(keys[1]))


def test_a_checkpoint_is_refused_with_another_public_key(
    keys: tuple[Path, Path], tmp_path: Path
) -> None:
    path = signed(keys, tmp_path / "cp.json")
    _, other, other_id = generate_keys(tmp_path / "other")
    with pytest.raises(CheckpointError, match=f"not by the given public key \\({other_id}\\)"):
        read_checkpoint(path, load_public_key(other))


def test_a_checkpoint_re_signed_by_another_key_claiming_the_auditor_s_id_is_refused(
    keys: tuple[Path, Path], tmp_path: Path
) -> None:
    path = signed(keys, tmp_path / "cp.json")
    forger, _, _ = generate_keys(tmp_path / "forger")
    document = orjson.loads(path.read_bytes())
    body = document["checkpoint"]
    body["heads"][0]["hash"] = "0" * 64
    forged = load_private_key(forger).sign(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    import base64  # noqa: PLC0415

    document["signature"]["value"] = base64.b64encode(forged).decode()
    path.write_bytes(orjson.dumps(document))
    with pytest.raises(CheckpointError, match="the signature does not hold"):
        read_checkpoint(path, load_public_key(keys[1]))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"{", "not JSON", id="not-json"),
        pytest.param(b"[]", "a JSON object expected", id="not-an-object"),
        pytest.param(b'{"checkpoint": {}}', "needs 'checkpoint' and 'signature'", id="unsigned"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_says_so(
    keys: tuple[Path, Path], tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path, load_public_key(keys[1]))
