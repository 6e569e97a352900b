"""``databus catalog``, ``grants`` and ``acl`` from the shell (no broker)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner, Result

from databus.cli import main

GRANTS = """\
grants:
  - consumer: civil
    dataset: health.death_certificate.v1
    fields: [person_ref, date_of_death]
    purpose: "End social assistance after a death."
    expires: 2099-12-31
  - consumer: police
    dataset: health.death_certificate.v1
    fields: [person_ref]
    purpose: "Close open cases."
    expires: 2001-01-31
"""


@pytest.fixture
def grants_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "grants"
    directory.mkdir()
    (directory / "health.yaml").write_text(GRANTS, encoding="utf-8")
    monkeypatch.setenv("DATABUS_GRANTS", str(directory))
    monkeypatch.setenv("DATABUS_CONFIG", str(tmp_path / "absent.toml"))
    return directory


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_catalog_shows_who_receives_what_and_why(grants_dir: Path) -> None:
    result = run("catalog", "show", "health.death_certificate.v1", "--json")
    assert result.exit_code == 0, result.output
    shared = {g["consumer"]: g for g in orjson.loads(result.output)["shared_with"]}
    assert shared["civil"]["fields"] == ["person_ref", "date_of_death"]
    assert shared["civil"]["purpose"] == "End social assistance after a death."
    assert shared["civil"]["state"] == "active"
    assert shared["police"]["state"] == "expired"
    table = run("catalog", "list")
    assert "civil, police (expired)" in table.output
    text = run("catalog", "show", "health.death_certificate.v1").output
    assert "End social assistance after a death." in text
    assert "never shared" in run("catalog", "show", "dlq.rejected.v1").output


def test_grants_check_counts_active_and_expired(grants_dir: Path) -> None:
    result = run("grants", "check")
    assert result.exit_code == 0, result.output
    assert "2 grants (1 active, 1 expired)" in result.output


def test_grants_check_names_the_mistake_and_fails(grants_dir: Path) -> None:
    (grants_dir / "health.yaml").write_text(GRANTS.replace("date_of_death]", "dod]"))
    result = run("grants", "check")
    assert result.exit_code == 2
    assert "health.yaml, grant 1 (line 2): fields: health.death_certificate.v1 has no field" in (
        result.output
    )


def test_a_grant_request_lands_in_the_owner_s_file(grants_dir: Path) -> None:
    args = [
        "grants", "request", "--consumer", "hrss", "--dataset", "civil.funeral.v1",
        "--fields", "person_ref,date_of_death", "--purpose", "Stop pensions.",
        "--expires", "2030-01-01",
    ]  # fmt: skip
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "civil approves it by merging it" in result.output
    written = yaml.safe_load((grants_dir / "civil.yaml").read_text())
    assert written["grants"][0]["consumer"] == "hrss"
    again = run(*args)
    assert again.exit_code == 2
    assert "duplicate grant of civil.funeral.v1 to hrss" in again.output


def test_a_request_for_sensitive_fields_needs_a_legal_basis(grants_dir: Path) -> None:
    result = run(
        "grants", "request", "--consumer", "police", "--dataset", "transport.transit_tap.v1",
        "--fields", "person_ref,station_code", "--purpose", "Find people.",
        "--expires", "2030-01-01",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "station_code is sensitive personal information" in result.output
    assert not (grants_dir / "transport.yaml").exists()


def test_acl_show_lists_each_user_s_rules(grants_dir: Path) -> None:
    result = run("acl", "show", "--json")
    assert result.exit_code == 0, result.output
    users = {u["user"]: u for u in orjson.loads(result.output)}
    assert "read topic share.civil.health.death_certificate.v1" in users["civil"]["acls"]
    assert users["police"]["acls"].count("read topic share.police.health.death_certificate.v1") == 0


def test_acl_render_writes_users_and_topics(grants_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = run("acl", "render", "--format", "strimzi", "--as-of", "2026-06-01",
                 "--output-dir", str(out), "--partitions", "6")  # fmt: skip
    assert result.exit_code == 0, result.output
    users = [d for d in yaml.safe_load_all((out / "kafka-users.yaml").read_text()) if d]
    topics = [d for d in yaml.safe_load_all((out / "kafka-topics.yaml").read_text()) if d]
    assert {u["kind"] for u in users} == {"KafkaUser"}
    assert "--as-of 2026-06-01" in (out / "kafka-users.yaml").read_text()
    names = {t["spec"]["topicName"]: t for t in topics}
    assert names["share.civil.health.death_certificate.v1"]["spec"]["partitions"] == 6
    assert "share.police.health.death_certificate.v1" in names  # the topic outlives its grant


def test_acl_show_lists_the_clock_and_the_audit_floor(grants_dir: Path) -> None:
    users = {u["user"]: u for u in orjson.loads(run("acl", "show", "--json").output)}
    assert users["databus-clock"]["acls"] == [
        "read topic system.clock.v1",
        "write topic system.clock.v1",
        "describe topic system.clock.v1",
        "write topic audit.operations.v1",
    ]
    assert "User:* DENY delete topic audit.sharing.v1" in users["*"]["acls"]
    text = run("acl", "show").output
    assert "everyone (the audit floor):" in text
    assert "    User:* DENY alter_configs topic audit.operations.v1" in text


def test_audit_keygen_and_the_checkpoint_options_are_checked_before_any_broker(
    grants_dir: Path, tmp_path: Path
) -> None:
    made = run("audit", "keygen", "--out", str(tmp_path / "keys"))
    assert made.exit_code == 0, made.output
    assert "mode 0600" in made.output
    again = run("audit", "keygen", "--out", str(tmp_path / "keys"))
    assert again.exit_code == 2
    assert "exists: an auditor key is made once" in again.output
    lonely = run("audit", "verify", "--expect-heads", str(tmp_path / "cp.json"))
    assert lonely.exit_code == 2
    assert "--expect-heads needs --public-key" in lonely.output
    missing = run("audit", "verify", "--expect-heads", str(tmp_path / "cp.json"),
                  "--public-key", str(tmp_path / "keys" / "audit-checkpoint.pub"))  # fmt: skip
    assert missing.exit_code == 2
    assert "cp.json: No such file or directory" in missing.output
