"""``databus catalog`` shows what the catalog holds (CLI wiring, no broker)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from databus.catalog import CATALOG
from databus.cli import main


def test_list_names_every_dataset() -> None:
    result = CliRunner().invoke(main, ["catalog", "list"])
    assert result.exit_code == 0, result.output
    for dataset in CATALOG:
        assert dataset.name in result.output


def test_list_json_matches_the_catalog() -> None:
    result = CliRunner().invoke(main, ["catalog", "list", "--json"])
    assert result.exit_code == 0
    listed = orjson.loads(result.output)
    assert [item["dataset"] for item in listed] == [d.name for d in CATALOG]


def test_show_json_has_fields_and_classification() -> None:
    result = CliRunner().invoke(main, ["catalog", "show", "transport.transit_tap.v1", "--json"])
    assert result.exit_code == 0
    shown = orjson.loads(result.output)
    assert shown["owner"] == "transport"
    assert shown["key"] == "person_ref"
    fields = {f["name"]: f for f in shown["fields"]}
    assert fields["station_code"]["classification"] == "sensitive_personal"
    assert fields["mode"]["required"] is True


def test_unknown_dataset_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["catalog", "show", "transport.transit_taps.v1"])
    assert result.exit_code == 2
    assert "did you mean transport.transit_tap.v1" in result.output


def test_publish_without_a_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABUS_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("DATABUS_DEMO", raising=False)
    monkeypatch.setenv("DATABUS_CONFIG", str(tmp_path / "absent.toml"))
    path = tmp_path / "x.ndjson"
    path.write_text("{}\n")
    result = CliRunner().invoke(main, ["publish", "hrss.pensioner.v1", str(path)])
    assert result.exit_code == 2
    assert "no pseudonym key" in result.output
