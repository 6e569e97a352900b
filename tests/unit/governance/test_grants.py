"""Grant files: each kind of mistake is refused with a message that names it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from databus.errors import GrantError
from databus.governance.grant_files import append_entry, entry_text, read_entries
from databus.governance.grants import load_grants

REPO = Path(__file__).resolve().parents[3]

GOOD = """\
  - consumer: civil
    dataset: health.death_certificate.v1
    fields: [person_ref, occurred_at, date_of_death]
    purpose: "End social assistance after a death."
    expires: 2027-12-31
"""
SENSITIVE = """\
  - consumer: civil
    dataset: transport.transit_tap.v1
    fields: [person_ref, station_code]
    purpose: "Trace contacts."
    legal_basis: "PIPL art. 13(1)(4)"
    expires: 2027-12-31
"""


def write(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("grants:\n" + body, encoding="utf-8")
    return path


def test_the_repository_grants_load() -> None:
    grants = load_grants(REPO / "deploy" / "grants")
    assert len(grants) >= 5
    assert {g.dataset.split(".")[0] for g in grants} >= {"health", "derived", "transport"}


def test_a_good_grant_loads_with_where_it_came_from(tmp_path: Path) -> None:
    write(tmp_path, "health.yaml", GOOD)
    (grant,) = load_grants(tmp_path)
    assert grant.consumer == "civil"
    assert grant.fields == ("person_ref", "occurred_at", "date_of_death")
    assert grant.expires == dt.date(2027, 12, 31)
    assert grant.share_topic == "share.civil.health.death_certificate.v1"
    assert grant.origin.endswith("health.yaml, grant 1 (line 2)")
    assert grant.legal_basis is None


def test_sensitive_fields_with_a_legal_basis_load(tmp_path: Path) -> None:
    write(tmp_path, "transport.yaml", SENSITIVE)
    (grant,) = load_grants(tmp_path)
    assert grant.legal_basis == "PIPL art. 13(1)(4)"


def test_expired_grants_load_but_are_inactive(tmp_path: Path) -> None:
    write(tmp_path, "health.yaml", GOOD.replace("2027-12-31", "2024-01-31"))
    grants = load_grants(tmp_path)
    (grant,) = grants
    assert grant.active_on(dt.date(2024, 1, 31))
    assert not grant.active_on(dt.date(2024, 2, 1))
    assert grants.active(dt.date(2024, 2, 1)) == []


@pytest.mark.parametrize(
    ("file", "body", "message"),
    [
        pytest.param(
            "health.yaml",
            GOOD.replace("health.death_certificate.v1", "health.death_certificat.v1"),
            "dataset: unknown dataset 'health.death_certificat.v1'; "
            "did you mean 'health.death_certificate.v1'?",
            id="unknown-dataset",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("date_of_death]", "date_of_deth]"),
            "fields: health.death_certificate.v1 has no field 'date_of_deth'; "
            "did you mean 'date_of_death'?",
            id="unknown-field",
        ),
        pytest.param(
            "transport.yaml",
            SENSITIVE.replace('    legal_basis: "PIPL art. 13(1)(4)"\n', ""),
            "legal_basis: missing, but station_code is sensitive personal information "
            "(PIPL art. 28)",
            id="sensitive-without-legal-basis",
        ),
        pytest.param(
            "transport.yaml",
            SENSITIVE.replace('"PIPL art. 13(1)(4)"', '"  "'),
            "legal_basis: missing, but station_code is sensitive",
            id="sensitive-with-blank-legal-basis",
        ),
        pytest.param(
            "health.yaml",
            GOOD + GOOD.replace("End social", "Also end social"),
            "health.yaml, grant 2 (line 7): duplicate grant of health.death_certificate.v1 "
            "to civil, already granted at",
            id="duplicate",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("    expires: 2027-12-31\n", ""),
            "missing expires",
            id="no-expiry",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("2027-12-31", "next year"),
            "expires: 'next year' is not a date (YYYY-MM-DD)",
            id="expiry-not-a-date",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("    purpose", "    purpos"),
            "unknown key 'purpos'; did you mean 'purpose'?",
            id="misspelt-key",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace('"End social assistance after a death."', '""'),
            "purpose: say what the consumer needs the data for",
            id="no-purpose",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("person_ref, ", ""),
            "fields: person_ref must be listed",
            id="no-person-ref",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("occurred_at, date_of_death", "date_of_death, date_of_death"),
            "fields: date_of_death listed twice",
            id="field-twice",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("consumer: civil", "consumer: health"),
            "consumer: health owns health.death_certificate.v1; an owner needs no grant",
            id="owner-as-consumer",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("consumer: civil", "consumer: Civil Affairs"),
            "consumer: 'Civil Affairs' is not an agency name",
            id="consumer-not-a-name",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("consumer: civil", "consumer: databus-share"),
            "consumer: 'databus-share' is reserved",
            id="reserved-consumer",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("health.death_certificate.v1", "dlq.rejected.v1"),
            "dataset: dlq.rejected.v1 is never shared",
            id="unshareable-dataset",
        ),
        pytest.param(
            "police.yaml",
            GOOD,
            "dataset: health.death_certificate.v1 belongs to health, whose grants are in "
            "health.yaml (the owner reviews them), not in police.yaml",
            id="filed-under-another-owner",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("fields: [person_ref, occurred_at, date_of_death]", "fields: []"),
            "fields: a non-empty list of field names",
            id="no-fields",
        ),
        pytest.param(
            "health.yaml",
            GOOD.replace("    expires", "   expires"),
            "health.yaml: line 6: not valid YAML",
            id="broken-yaml",
        ),
    ],
)
def test_mistakes_are_refused_with_a_message_naming_them(
    tmp_path: Path, file: str, body: str, message: str
) -> None:
    write(tmp_path, file, body)
    with pytest.raises(GrantError) as refused:
        load_grants(tmp_path)
    assert message in str(refused.value)
    assert file in str(refused.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    body = GOOD.replace("date_of_death]", "date_of_deth]").replace("2027-12-31", "soon")
    write(tmp_path, "health.yaml", body)
    with pytest.raises(GrantError) as refused:
        load_grants(tmp_path)
    assert len(refused.value.problems) == 2
    assert str(refused.value).startswith("2 problems in grant files:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("- consumer: civil\n", "a grant file has one key, grants", id="a-bare-list"),
        pytest.param("grants: {}\n", "grants must be a list", id="grants-not-a-list"),
        pytest.param("grants:\n  - just text\n", "a grant is a mapping", id="entry-not-a-map"),
    ],
)
def test_files_that_are_not_grant_files(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "health.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(GrantError, match=message):
        load_grants(tmp_path)


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GrantError, match="no such grant file"):
        load_grants(tmp_path / "nowhere")


def test_a_single_file_may_hold_any_owner_s_grants(tmp_path: Path) -> None:
    path = write(tmp_path, "grants.yaml", GOOD + SENSITIVE)
    assert len(load_grants(path)) == 2


def test_an_empty_file_has_no_grants(tmp_path: Path) -> None:
    (tmp_path / "health.yaml").write_text("# nothing granted yet\n", encoding="utf-8")
    assert len(load_grants(tmp_path)) == 0


@pytest.mark.parametrize(
    "existing",
    [
        pytest.param(None, id="new-file"),
        pytest.param("# header\ngrants: []\n", id="empty-flow-list"),
        pytest.param("# header\ngrants:\n" + GOOD.replace("civil", "hrss", 1), id="after-others"),
    ],
)
def test_a_request_is_appended_as_text(tmp_path: Path, existing: str | None) -> None:
    path = tmp_path / "health.yaml"
    if existing is not None:
        path.write_text(existing, encoding="utf-8")
    entry = {
        "consumer": "civil",
        "dataset": "health.death_certificate.v1",
        "fields": ["person_ref", "date_of_death"],
        "purpose": 'End "social assistance" after a death: 社会救助',
        "legal_basis": None,
        "expires": dt.date(2027, 12, 31),
    }
    append_entry(path, "health", entry_text(entry, comment="requested by civil"))

    grants = {g.consumer: g for g in load_grants(tmp_path)}
    assert grants["civil"].purpose == entry["purpose"]
    assert grants["civil"].fields == ("person_ref", "date_of_death")
    assert "# requested by civil" in path.read_text(encoding="utf-8")
    if existing is not None:
        assert path.read_text(encoding="utf-8").startswith("# header\n")
    assert len(read_entries(path)) == (2 if existing and "hrss" in existing else 1)
