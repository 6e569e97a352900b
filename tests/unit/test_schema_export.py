"""``databus schemas export`` against a temporary directory, and the files it writes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from databus import records as r
from databus.catalog import CATALOG
from databus.cli.schemas import schemas
from databus.errors import SchemaCompatibilityError
from databus.schemas import apply_export, dataset_schema, plan_export, schema_files

PENSIONER_BUS = Path("hrss.pensioner.v1", "bus.schema.json")
PERSON_REF = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
WHEN = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def export(directory: Path, *args: str) -> Result:
    return CliRunner().invoke(schemas, ["export", "--dir", str(directory), *args])


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    """A schemas directory freshly exported from the catalog."""
    directory = tmp_path / "schemas"
    result = export(directory)
    assert result.exit_code == 0, result.output
    return directory


def edit(path: Path, change: Any) -> None:
    """Rewrite a committed schema file through ``change(schema)``."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    path.write_text(json.dumps(schema, indent=2), encoding="utf-8")


def snapshot(directory: Path) -> dict[str, bytes]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {str(p.relative_to(directory)): p.read_bytes() for p in files}


def without_monthly_amount(schema: dict[str, Any]) -> None:
    """The committed schema as it would be before the field existed."""
    del schema["properties"]["monthly_amount_cents"]
    schema["required"].remove("monthly_amount_cents")


def test_export_writes_every_form_then_check_passes(exported: Path) -> None:
    expected = {str(f.relpath) for f in schema_files()}
    assert {str(p.relative_to(exported)) for p in exported.rglob("*.json")} == expected
    assert (exported / "hrss.pensioner.v1" / "input.schema.json").is_file()
    assert not (exported / "system.clock.v1" / "input.schema.json").exists()
    result = export(exported, "--check")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_reexport_is_byte_identical(exported: Path) -> None:
    before = snapshot(exported)
    result = export(exported)
    assert result.exit_code == 0, result.output
    assert snapshot(exported) == before
    assert f"wrote 0, removed 0, left {len(before)} unchanged" in result.output


def test_files_are_sorted_indented_and_end_with_a_newline(exported: Path) -> None:
    text = (exported / PENSIONER_BUS).read_text(encoding="utf-8")
    schema = json.loads(text)
    assert text == json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_committed_schemas_are_up_to_date() -> None:
    """The same gate as `databus schemas export --check`, so that `make test` enforces it."""
    plan = plan_export(Path(__file__).parents[2] / "schemas")
    assert plan.describe_incompatibilities() == []
    assert [str(f.relpath) for f in plan.stale] == [], "run `databus schemas export`"


def test_check_fails_on_a_missing_file_and_export_restores_it(exported: Path) -> None:
    (exported / PENSIONER_BUS).unlink()
    result = export(exported, "--check")
    assert result.exit_code == 1
    assert f"missing  {exported / PENSIONER_BUS}" in result.output
    assert "run `databus schemas export`" in result.output
    assert not (exported / PENSIONER_BUS).exists(), "--check must not write"
    assert export(exported).exit_code == 0
    assert export(exported, "--check").exit_code == 0


def test_orphan_files_are_stale_and_removed_by_export(exported: Path) -> None:
    orphan = exported / "hrss.retired.v1" / "bus.schema.json"
    orphan.parent.mkdir()
    orphan.write_text("{}\n", encoding="utf-8")
    result = export(exported, "--check")
    assert result.exit_code == 1
    assert f"orphan   {orphan}" in result.output
    result = export(exported)
    assert result.exit_code == 0, result.output
    assert f"removed    {orphan}" in result.output
    assert not orphan.parent.exists()


def test_compatible_change_is_stale_but_not_an_error_of_compatibility(exported: Path) -> None:
    def tighter_account(schema: dict[str, Any]) -> None:
        schema["properties"]["pensioner_account"]["maxLength"] = 32

    edit(exported / PENSIONER_BUS, tighter_account)
    result = export(exported, "--check")
    assert result.exit_code == 1
    assert f"changed  {exported / PENSIONER_BUS}" in result.output
    assert "incompatible" not in result.output
    result = export(exported)
    assert result.exit_code == 0, result.output
    assert f"changed    {exported / PENSIONER_BUS}" in result.output
    assert export(exported, "--check").exit_code == 0


def test_annotation_edits_are_stale_but_compatible(exported: Path) -> None:
    edit(exported / PENSIONER_BUS, lambda s: s.update(description="hand-edited"))
    plan = plan_export(exported)
    assert [str(f.relpath) for f in plan.stale] == [str(PENSIONER_BUS)]
    assert plan.incompatible == ()


def test_check_names_the_dataset_of_an_incompatible_change(exported: Path) -> None:
    edit(exported / PENSIONER_BUS, without_monthly_amount)
    result = export(exported, "--check")
    assert result.exit_code == 1
    assert "run `databus schemas export`" in result.output
    assert (
        "incompatible: hrss.pensioner.v1 (bus form, hrss.pensioner.v1/bus.schema.json): "
        "#/properties/monthly_amount_cents: property 'monthly_amount_cents' added as required"
    ) in result.output
    assert "hrss.pensioner.v2" in result.output


def test_export_refuses_an_incompatible_change_and_writes_nothing(exported: Path) -> None:
    edit(exported / PENSIONER_BUS, without_monthly_amount)
    (exported / "civil.funeral.v1" / "bus.schema.json").unlink()
    before = snapshot(exported)
    result = export(exported)
    assert result.exit_code == 1
    assert "hrss.pensioner.v1" in result.output
    assert "#/properties/monthly_amount_cents" in result.output
    assert "bump the major version (a new dataset hrss.pensioner.v2)" in result.output
    assert snapshot(exported) == before


def test_unreadable_committed_file_is_refused(exported: Path) -> None:
    (exported / PENSIONER_BUS).write_text("{not json", encoding="utf-8")
    result = export(exported)
    assert result.exit_code == 1
    assert "not valid JSON" in result.output


def test_apply_export_raises_for_python_callers(exported: Path) -> None:
    edit(exported / PENSIONER_BUS, without_monthly_amount)
    with pytest.raises(SchemaCompatibilityError, match=r"hrss\.pensioner\.v1 \(bus form"):
        apply_export(plan_export(exported))


@pytest.mark.parametrize("file", schema_files(), ids=lambda f: str(f.relpath))
def test_every_schema_is_valid_draft_2020_12(file: Any) -> None:
    jsonschema.Draft202012Validator.check_schema(file.schema)
    assert file.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert file.schema["$id"] == f"schemas/{file.dataset}/{file.form}.schema.json"
    assert file.schema["title"] == f"{file.dataset} ({file.form} form)"
    assert file.schema["description"]
    assert file.schema["additionalProperties"] is False


@pytest.mark.parametrize("dataset", list(CATALOG), ids=lambda d: d.name)
def test_bus_schema_id_is_the_dataschema_and_fields_are_classified(dataset: Any) -> None:
    schema = dataset_schema(dataset, "bus")
    assert schema["$id"] == dataset.dataschema
    for name, prop in schema["properties"].items():
        assert prop["x-classification"] == dataset.classification.get(name, "internal")


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_a_valid_pensioner_record_validates_against_its_bus_schema() -> None:
    record = r.Pensioner(
        occurred_at=WHEN,
        person_ref=PERSON_REF,
        pensioner_account="P-0001",
        scheme="employee",
        status="active",
        benefit_start=dt.date(2020, 1, 1),
        monthly_amount_cents=312_000,
    )
    check = validator(dataset_schema(CATALOG.get("hrss.pensioner.v1"), "bus"))
    data = record.model_dump(mode="json")
    assert list(check.iter_errors(data)) == []
    assert not check.is_valid({**data, "citizen_id": "110101194001011234"})
    assert not check.is_valid({**data, "monthly_amount_cents": -1})


def test_a_decision_with_nested_evidence_validates_against_its_bus_schema() -> None:
    evidence = r.EvidenceRef(id="e-1", dataset="health.hospital_visit.v1", occurred_at=WHEN)
    record = r.PensionStatus(
        person_ref=PERSON_REF,
        pensioner_account="P-0001",
        decision="confirmed",
        reason="evidence",
        as_of=dt.date(2024, 5, 2),
        qualified_until=dt.date(2025, 5, 1),
        evidence=[evidence],
        rule_version="pension-1",
    )
    check = validator(dataset_schema(CATALOG.get("derived.pension_status.v1"), "bus"))
    data = record.model_dump(mode="json")
    assert list(check.iter_errors(data)) == []
    data["evidence"][0]["extra"] = 1
    assert not check.is_valid(data)


def test_an_agency_line_validates_against_the_input_schema() -> None:
    line = {
        "occurred_at": "2024-05-01T09:30:00+08:00",
        "citizen_id": "110101194001011234",
        "certificate_no": "DC-1",
        "date_of_death": "2024-04-30",
        "institution_code": "H-1",
    }
    check = validator(dataset_schema(CATALOG.get("health.death_certificate.v1"), "input"))
    assert list(check.iter_errors(line)) == []
    assert not check.is_valid({**line, "person_ref": PERSON_REF})
