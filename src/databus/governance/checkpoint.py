"""Signed checkpoints of the audit chain's heads, kept outside Kafka.

A hash chain resists outsiders only: whoever may write ``audit.sharing.v1`` (the share
worker's credential) can append a correctly chained record, and a super user can
delete records, or the whole topic, and rebuild it from the public genesis. So an
auditor, with an Ed25519 key that neither the share worker nor the broker holds,
signs the head of every partition after a full verify (``audit checkpoint``), and keeps
the file elsewhere; a later ``audit verify --expect-heads FILE`` proves that every
checkpointed record is still in its chain, with its hash, at its offset. History that
was once checkpointed cannot be rewritten, shortened or rebuilt unnoticed.

The file is JSON: ``{"checkpoint": {...}, "signature": {"alg", "key_id", "value"}}``;
the signature (base64) covers the checkpoint object as canonical JSON (sorted keys,
orjson), which also names the key id, so a checkpoint cannot be passed off as signed
by another key. The key id is the first 16 hex digits of the SHA-256 of the raw public
key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from databus.errors import CheckpointError
from databus.governance.chain import ExpectedHead, PartitionReport

FORMAT = "databus-audit-checkpoint/1"
ALGORITHM = "Ed25519"
PRIVATE_KEY_FILE = "audit-checkpoint.key"
PUBLIC_KEY_FILE = "audit-checkpoint.pub"


@dataclass(frozen=True, slots=True)
class CheckpointHead:
    """One partition's head when the checkpoint was signed (``seq`` None: empty)."""

    partition: int
    seq: int | None
    hash: str
    offset: int | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A verified, signed statement of every partition's head."""

    topic: str
    signed_at: str
    key_id: str
    records: int
    heads: tuple[CheckpointHead, ...]
    foreign: tuple[tuple[int, int], ...] = ()
    """(partition, offset) of the foreign records the auditor saw and signed for: a
    later verify lists them as known instead of failing on them."""
    path: Path | None = None

    def expected(self) -> list[ExpectedHead]:
        """The heads a later verify must find (empty partitions vouch for nothing)."""
        return [
            ExpectedHead(h.partition, h.seq, h.hash, h.offset)
            for h in self.heads
            if h.seq is not None and h.offset is not None
        ]

    def body(self) -> dict[str, Any]:
        """The signed object."""
        return {
            "format": FORMAT,
            "topic": self.topic,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "records": self.records,
            "heads": [
                {"partition": h.partition, "seq": h.seq, "hash": h.hash, "offset": h.offset}
                for h in self.heads
            ],
            "foreign": [[partition, offset] for partition, offset in self.foreign],
        }


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name of a public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keys(directory: Path) -> tuple[Path, Path, str]:
    """A new key pair in ``directory``: the private key (0600) and the public key; the
    paths and the key id. Refuses to replace an existing key."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise CheckpointError(f"{path} exists: an auditor key is made once; move it away")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(private_path, pem, mode=0o600)
    public = private.public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    _write_new(public_path, public.public_bytes(serialization.Encoding.PEM, spki), mode=0o644)
    return private_path, public_path, key_id(public)


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (never briefly readable by others)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The auditor's private key; refused if others may read the file."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes()
    except OSError as failed:
        raise CheckpointError(f"private key {path}: {failed.strerror}") from None
    if mode & 0o077:
        raise CheckpointError(
            f"private key {path} may be read by others (mode {mode:04o}): chmod 600 it"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as invalid:
        raise CheckpointError(f"private key {path}: not a PEM private key ({invalid})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"private key {path}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The auditor's public key."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as failed:
        raise CheckpointError(f"public key {path}: {failed.strerror}") from None
    except ValueError as invalid:
        raise CheckpointError(f"public key {path}: not a PEM public key ({invalid})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"public key {path}: not an Ed25519 key")
    return key


def checkpoint_of(
    topic: str, reports: Sequence[PartitionReport], public: Ed25519PublicKey, at: dt.datetime
) -> Checkpoint:
    """The checkpoint of a verified topic (every chain intact: see the CLI)."""
    heads = tuple(CheckpointHead(r.partition, r.head_seq, r.head, r.head_offset) for r in reports)
    foreign = tuple((f.partition, f.offset) for r in reports for f in r.foreign)
    return Checkpoint(
        topic,
        at.astimezone(dt.UTC).isoformat(),
        key_id(public),
        sum(r.records for r in reports),
        heads,
        foreign,
    )


def _canonical(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def signed_document(checkpoint: Checkpoint, private: Ed25519PrivateKey) -> bytes:
    """The checkpoint file's bytes, signed with ``private``."""
    body = checkpoint.body()
    signature = private.sign(_canonical(body))
    document = {
        "checkpoint": body,
        "signature": {
            "alg": ALGORITHM,
            "key_id": checkpoint.key_id,
            "value": base64.b64encode(signature).decode(),
        },
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def write_checkpoint(path: Path, document: bytes) -> None:
    """Write a new checkpoint file; an existing one is never replaced (each is history)."""
    if path.exists():
        raise CheckpointError(f"{path} exists: checkpoints are kept; choose a new file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_new(path, document, mode=0o644)


def read_checkpoint(path: Path, public: Ed25519PublicKey) -> Checkpoint:
    """A checkpoint whose signature by ``public`` holds; refused otherwise."""
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as failed:
        raise CheckpointError(f"checkpoint {path}: {failed.strerror}") from None
    except orjson.JSONDecodeError:
        raise CheckpointError(f"checkpoint {path}: not JSON") from None
    body, signature = _parts(path, document)
    expected_id = key_id(public)
    if body.get("key_id") != expected_id or signature.get("key_id") != expected_id:
        raise CheckpointError(
            f"checkpoint {path} was signed by key {body.get('key_id')}, not by the given "
            f"public key ({expected_id})"
        )
    try:
        public.verify(base64.b64decode(signature.get("value", ""), validate=True), _canonical(body))
    except (InvalidSignature, binascii.Error, TypeError):
        raise CheckpointError(
            f"checkpoint {path}: the signature does not hold: the file was changed after "
            "it was signed"
        ) from None
    return _parsed(path, body)


def _parts(path: Path, document: object) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(document, dict):
        raise CheckpointError(f"checkpoint {path}: not a checkpoint (a JSON object expected)")
    body, signature = document.get("checkpoint"), document.get("signature")
    if not isinstance(body, dict) or not isinstance(signature, dict):
        raise CheckpointError(f"checkpoint {path}: needs 'checkpoint' and 'signature' objects")
    if body.get("format") != FORMAT or signature.get("alg") != ALGORITHM:
        raise CheckpointError(f"checkpoint {path}: format must be {FORMAT}, signed {ALGORITHM}")
    return body, signature


def _parsed(path: Path, body: dict[str, Any]) -> Checkpoint:
    """The signed body as a :class:`Checkpoint` (a signed but malformed one is refused)."""
    try:
        heads = tuple(
            CheckpointHead(
                int(h["partition"]),
                None if h["seq"] is None else int(h["seq"]),
                str(h["hash"]),
                None if h["offset"] is None else int(h["offset"]),
            )
            for h in body["heads"]
        )
        foreign = tuple((int(p), int(o)) for p, o in body.get("foreign", []))
        return Checkpoint(
            str(body["topic"]),
            str(body["signed_at"]),
            str(body["key_id"]),
            int(body["records"]),
            heads,
            foreign,
            path,
        )
    except (KeyError, TypeError, ValueError) as invalid:
        raise CheckpointError(f"checkpoint {path}: malformed ({invalid!r})") from None
