"""``databus audit``: verify the sharing audit trail, and sign checkpoints of it.

``verify`` recomputes every partition's hash chain, checks the heads of signed
checkpoints (``--expect-heads``), blames a shortened log on retention only when the
topic lets records expire, and cross-checks each audit record against the share and
source topics it describes. ``keygen`` and ``checkpoint`` are the auditor's: a key the
share worker never holds signs the verified heads into a file kept outside Kafka.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from databus.catalog import AUDIT
from databus.errors import CheckpointError
from databus.governance.audit_log import AuditReport, audit_topic
from databus.governance.checkpoint import (
    Checkpoint,
    checkpoint_of,
    generate_keys,
    load_private_key,
    load_public_key,
    read_checkpoint,
    signed_document,
    write_checkpoint,
)
from databus.governance.grant_files import display
from databus.settings import Settings

#: Exit code when anything is found (2 stays "the command could not run").
EXIT_BROKEN = 1

_file = click.Path(dir_okay=False, path_type=Path)
F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def audit() -> None:
    """The audit trail of sharing (audit.sharing.v1)."""


def _checks(command: F) -> F:
    """The options of everything that verifies the trail."""
    for option in reversed(
        [
            click.option(
                "--topic",
                default=AUDIT.topic,
                show_default=True,
                help="The audit topic, or a copy of it to check.",
            ),
            click.option(
                "--expect-heads",
                "checkpoints",
                type=_file,
                multiple=True,
                metavar="FILE",
                help="A signed checkpoint whose heads must still be in the chains "
                "(repeatable); needs --public-key.",
            ),
            click.option(
                "--public-key",
                type=_file,
                help="The auditor's public key that signed the checkpoints.",
            ),
            click.option(
                "--no-cross-check",
                is_flag=True,
                help="Do not check the audit records against the share and source topics.",
            ),
        ]
    ):
        command = option(command)
    return command


def _load_checkpoints(files: Sequence[Path], public_key: Path | None) -> list[Checkpoint]:
    if not files:
        return []
    if public_key is None:
        raise click.UsageError("--expect-heads needs --public-key (the auditor's)")
    public = load_public_key(public_key)
    return [read_checkpoint(path, public) for path in files]


def _run_checks(
    settings: Settings,
    topic: str,
    checkpoints: Sequence[Checkpoint],
    *,
    cross: bool,
) -> AuditReport:
    for checkpoint in checkpoints:
        if checkpoint.topic != topic and topic == AUDIT.topic:
            raise CheckpointError(
                f"checkpoint {checkpoint.path} is of {checkpoint.topic}, not of {topic}"
            )
    return asyncio.run(
        audit_topic(
            settings,
            topic,
            expect=[head for c in checkpoints for head in c.expected()],
            known_foreign={pair for c in checkpoints for pair in c.foreign},
            cross=cross,
        )
    )


def _print(report: AuditReport, checkpoints: Sequence[Checkpoint]) -> None:
    """Every partition's chain, then each kind of finding on lines of its own."""
    for part in report.partitions:
        anchored = ""
        if part.anchored_at is not None:
            anchored = f", from offset {part.anchored_at}"
            if not any("were deleted" in finding.reason for finding in part.findings):
                anchored += f" (older records expired: {report.retention})"
        if part.broken is None:
            head = "" if part.head_seq is None else f" at seq {part.head_seq}"
            click.echo(
                f"partition {part.partition}: {part.records} records, intact{anchored}; "
                f"head {part.head}{head}"
            )
        else:
            click.echo(f"BROKEN {part.broken}")
            click.echo(f"    the {part.records} records before it are intact{anchored}")
        for finding in part.findings:
            click.echo(f"FOUND {finding}")
    for number in report.missing_partitions:
        click.echo(f"FOUND partition {number}: checkpointed, but the topic no longer has it")
    known = report.known_foreign
    for part in report.partitions:
        for record in part.foreign:
            tag = "known foreign" if (record.partition, record.offset) in known else "FOREIGN"
            click.echo(f"{tag} {record}")
    _print_checkpoints(report, checkpoints)
    _print_cross_check(report)


def _print_checkpoints(report: AuditReport, checkpoints: Sequence[Checkpoint]) -> None:
    for checkpoint in checkpoints:
        click.echo(
            f"checkpoint {display(checkpoint.path or Path())}: signature by key "
            f"{checkpoint.key_id} holds (signed {checkpoint.signed_at})"
        )
    if checkpoints:
        expected = sum(len(checkpoint.expected()) for checkpoint in checkpoints)
        confirmed = sum(part.confirmed for part in report.partitions)
        click.echo(f"checkpointed heads: {confirmed} of {expected} in the chains at their place")


def _print_cross_check(report: AuditReport) -> None:
    cross = report.cross
    if cross is None:
        click.echo("not cross-checked against the share and source topics (--no-cross-check)")
        return
    for mismatch in cross.mismatches:
        # A share no audit record names, or an audit record the topics do not back.
        tag = "UNAUDITED" if mismatch.where.startswith("share.") else "UNBACKED"
        click.echo(f"{tag} {mismatch}")
    click.echo(
        f"cross-check: {cross.checked} audit records match their share and source "
        f"({report.share_topics} share topics, {report.source_partitions} source "
        f"partitions read); {cross.uncheckable} no longer checkable (retention); "
        f"{len(cross.mismatches)} contradicted"
    )


@audit.command("verify")
@_checks
@click.pass_context
def verify(
    ctx: click.Context,
    *,
    topic: str,
    checkpoints: tuple[Path, ...],
    public_key: Path | None,
    no_cross_check: bool,
) -> None:
    """Check the chains, the checkpoints and the cross-check; name what is wrong (exit 1).

    The head printed per partition is the hash of its newest record; a signed
    checkpoint of them (`databus audit checkpoint`) kept elsewhere makes every later
    verify with --expect-heads prove that no checkpointed record was rewritten or
    deleted, and that the topic was not rebuilt.
    """
    settings: Settings = ctx.obj
    loaded = _load_checkpoints(checkpoints, public_key)
    report = _run_checks(settings, topic, loaded, cross=not no_cross_check)
    _print(report, loaded)
    total = sum(part.records for part in report.partitions)
    if not report.intact:
        click.echo(f"{topic}: {_summary(report)}", err=True)
        ctx.exit(EXIT_BROKEN)
    click.echo(
        f"{topic}: {total} records in {len(report.partitions)} partitions, every chain intact"
    )


def _summary(report: AuditReport) -> str:
    broken = sum(1 for part in report.partitions if part.broken is not None)
    findings = sum(len(part.findings) for part in report.partitions)
    findings += len(report.missing_partitions)
    foreign = len(report.new_foreign())
    contradicted = len(report.cross.mismatches) if report.cross else 0
    parts = [
        f"{broken} of {len(report.partitions)} partitions broken" if broken else "",
        _count(findings, "deletion or checkpoint mismatch", "deletions or checkpoint mismatches"),
        _count(foreign, "foreign record", "foreign records"),
        _count(contradicted, "audit record or share contradicted by the topics",
               "audit records or shares contradicted by the topics"),
    ]  # fmt: skip
    return "; ".join(part for part in parts if part)


def _count(number: int, one: str, many: str) -> str:
    return "" if not number else f"{number} {one if number == 1 else many}"


@audit.command("keygen")
@click.option(
    "--out",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for audit-checkpoint.key (0600) and audit-checkpoint.pub.",
)
def keygen(directory: Path) -> None:
    """Make the auditor's Ed25519 key pair (keep the private key off the bus's hosts)."""
    private, public, key = generate_keys(directory)
    click.echo(f"private key {display(private)} (mode 0600: the auditor's alone)")
    click.echo(f"public key  {display(public)} (key id {key}: give it to whoever verifies)")


@audit.command("checkpoint")
@click.option("--key", "private_key", type=_file, required=True, help="The auditor's private key.")
@click.option("--out", "out", type=_file, required=True, help="The checkpoint file to write.")
@_checks
@click.pass_context
def checkpoint(
    ctx: click.Context,
    *,
    private_key: Path,
    out: Path,
    topic: str,
    checkpoints: tuple[Path, ...],
    public_key: Path | None,
    no_cross_check: bool,
) -> None:
    """Verify everything, then sign every partition's head into FILE (keep it elsewhere).

    Nothing is signed when a chain is broken, records were deleted, an earlier
    checkpoint (--expect-heads) is not matched or the cross-check contradicts a record.
    Foreign records are listed in the checkpoint: later verifies name them as known.
    """
    settings: Settings = ctx.obj
    private = load_private_key(private_key)
    loaded = _load_checkpoints(checkpoints, public_key)
    report = _run_checks(settings, topic, loaded, cross=not no_cross_check)
    _print(report, loaded)
    crossed = report.cross is None or not report.cross.mismatches
    if not (report.chains_hold and crossed):
        click.echo(f"{topic}: {_summary(report)}; no checkpoint written", err=True)
        ctx.exit(EXIT_BROKEN)
    signed = checkpoint_of(topic, report.partitions, private.public_key(), dt.datetime.now(dt.UTC))
    write_checkpoint(out, signed_document(signed, private))
    click.echo(
        f"checkpoint {display(out)}: {signed.records} records in {len(signed.heads)} "
        f"partitions, signed by key {signed.key_id}"
    )
