"""The catalog is the single source of truth and agrees with DATASETS.md."""

from __future__ import annotations

import pytest

from databus.catalog import CATALOG
from databus.errors import CatalogError

CONTRACT = {
    "hrss.pensioner.v1": {"pensioner_account", "scheme", "status", "benefit_start",
                          "monthly_amount_cents"},
    "hrss.face_authentication.v1": {"channel"},
    "health.hospital_visit.v1": {"visit_id", "hospital_code", "visit_type", "identity_verified"},
    "health.physical_exam.v1": {"exam_id", "institution_code"},
    "health.death_certificate.v1": {"certificate_no", "date_of_death", "institution_code"},
    "transport.transit_tap.v1": {"card_id", "mode", "station_code", "identity_verified"},
    "civil.funeral.v1": {"record_no", "date_of_death", "funeral_home_code"},
    "police.household.v1": {"event", "birth_date", "region_code", "date_of_death"},
}  # fmt: skip


@pytest.mark.parametrize(("name", "fields"), sorted(CONTRACT.items()))
def test_source_datasets_have_the_contract_fields(name: str, fields: set[str]) -> None:
    dataset = CATALOG.get(name)
    assert dataset.input_model is not None
    assert fields | {"citizen_id", "occurred_at"} <= set(dataset.input_model.model_fields)
    assert fields | {"person_ref", "occurred_at"} <= set(dataset.bus_model.model_fields)
    assert dataset.person_keyed
    assert dataset.owner == name.split(".", maxsplit=1)[0]


def test_every_contract_dataset_is_in_the_catalog() -> None:
    names = {d.name for d in CATALOG}
    assert set(CONTRACT) <= names
    assert {
        "system.clock.v1",
        "derived.pension_status.v1",
        "derived.fraud_alert.v1",
        "derived.elderly_allowance.v1",
        "dlq.rejected.v1",
    } <= names


def test_every_field_is_classified() -> None:
    for dataset in CATALOG:
        models = [dataset.bus_model] + ([dataset.input_model] if dataset.input_model else [])
        for model in models:
            assert set(model.model_fields) <= set(dataset.classification), dataset.name


def test_copartitioned_topics_share_the_partition_count() -> None:
    counts = {d.partitions(12) for d in CATALOG.copartitioned()}
    assert counts == {12}
    assert CATALOG.get("system.clock.v1") in CATALOG.copartitioned()
    assert CATALOG.get("dlq.rejected.v1") not in CATALOG.copartitioned()


def test_unknown_dataset_suggests_close_names() -> None:
    with pytest.raises(CatalogError, match=r"did you mean hrss\.pensioner\.v1"):
        CATALOG.get("hrss.pensoner.v1")


def test_topic_and_major_follow_the_name() -> None:
    dataset = CATALOG.get("health.hospital_visit.v1")
    assert dataset.topic == "health.hospital_visit.v1"
    assert dataset.major == 1
    assert dataset.dataschema == "schemas/health.hospital_visit.v1/bus.schema.json"


@pytest.mark.parametrize(
    ("dataset", "field"),
    [
        pytest.param("health.hospital_visit.v1", "hospital_code", id="where-treated"),
        pytest.param("health.hospital_visit.v1", "occurred_at", id="when-treated"),
        pytest.param("health.physical_exam.v1", "occurred_at", id="when-examined"),
        pytest.param("transport.transit_tap.v1", "station_code", id="whereabouts"),
        pytest.param("transport.transit_tap.v1", "occurred_at", id="when-there"),
    ],
)
def test_health_data_and_whereabouts_are_sensitive_personal_information(
    dataset: str, field: str
) -> None:
    assert CATALOG.get(dataset).classification[field] == "sensitive_personal"


def test_levels_follow_gb_t_43697() -> None:
    important = {d.name for d in CATALOG if d.level == "important"}
    assert {
        "health.hospital_visit.v1",
        "transport.transit_tap.v1",
        "police.household.v1",
        "audit.sharing.v1",
    } <= important
    assert CATALOG.get("civil.funeral.v1").level == "general"


def test_what_may_be_shared() -> None:
    shareable = {d.name for d in CATALOG.shareable()}
    assert {d.name for d in CATALOG.sources()} <= shareable
    assert "derived.fraud_alert.v1" in shareable
    assert shareable.isdisjoint({"dlq.rejected.v1", "system.clock.v1", "audit.sharing.v1"})
    assert all(CATALOG.get(name).person_keyed for name in shareable)


def test_audit_trail_is_copartitioned_with_the_sources() -> None:
    audit = CATALOG.get("audit.sharing.v1")
    assert audit.copartitioned
    assert audit.person_keyed
    assert audit.retention_ms == -1
