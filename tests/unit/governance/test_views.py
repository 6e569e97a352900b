"""Share views: a grant becomes a dataset with only the granted fields."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from databus.catalog import CATALOG
from databus.errors import ConfigurationError
from databus.governance.grants import Grant, GrantSet
from databus.governance.views import (
    catalog_with_views,
    configured_catalog,
    share_dataset,
)
from databus.settings import Settings

GRANT = Grant(
    consumer="civil",
    dataset="health.hospital_visit.v1",
    fields=("person_ref", "occurred_at", "visit_type"),
    purpose="test",
    expires=dt.date(2030, 1, 1),
    legal_basis="PIPL art. 13(1)(3)",
)
RECORD = {
    "person_ref": "A" * 26,
    "occurred_at": "2026-05-06T09:30:00+08:00",
    "visit_type": "inpatient",
}


def test_a_view_is_a_dataset_named_after_consumer_and_source() -> None:
    view = share_dataset(GRANT)
    assert view.name == view.topic == "share.civil.health.hospital_visit.v1"
    assert view.owner == "health"
    assert view.person_keyed
    assert view.copartitioned
    assert not view.shareable
    assert view.level == "important"
    assert view.dataschema == "schemas/health.hospital_visit.v1/bus.schema.json"
    assert view.classification == {
        "person_ref": "personal",
        "occurred_at": "sensitive_personal",
        "visit_type": "sensitive_personal",
    }
    assert view.topic_config()["retention.ms"] == str(30 * 86_400_000)


def test_a_view_s_model_has_exactly_the_granted_fields() -> None:
    model = share_dataset(GRANT).bus_model
    assert list(model.model_fields) == list(GRANT.fields)
    assert model.model_validate(RECORD).model_dump(mode="json") == RECORD


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"hospital_code": "H1"}, "hospital_code", id="an-ungranted-field"),
        pytest.param({"visit_type": "picnic"}, "visit_type", id="the-source-s-checks-hold"),
        pytest.param({"person_ref": "lower"}, "person_ref", id="a-bad-pseudonym"),
    ],
)
def test_a_view_s_model_refuses_anything_else(change: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        share_dataset(GRANT).bus_model.model_validate(RECORD | change)
    assert refused.value.errors()[0]["loc"] == (field,)


def test_the_catalog_with_views_has_one_dataset_per_grant() -> None:
    expired = Grant(
        consumer="hrss",
        dataset="health.hospital_visit.v1",
        fields=("person_ref",),
        purpose="test",
        expires=dt.date(2020, 1, 1),
        legal_basis=None,
    )
    catalog = catalog_with_views(GrantSet((GRANT, expired)))
    assert len(catalog) == len(CATALOG) + 2
    assert "share.hrss.health.hospital_visit.v1" in catalog  # the topic outlives the grant


def test_configured_grants_come_from_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "grants.yaml"
    path.write_text("grants: []\n")
    assert len(configured_catalog(Settings(grants=path))) == len(CATALOG)
    with pytest.raises(ConfigurationError, match=r"DATABUS_GRANTS=.*no such grant file"):
        configured_catalog(Settings(grants=tmp_path / "absent.yaml"))


def test_the_checkout_s_grants_are_the_default() -> None:
    catalog = configured_catalog(Settings())
    assert "share.civil.health.death_certificate.v1" in catalog
