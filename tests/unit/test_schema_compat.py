"""The backward-compatibility rule of docs/schemas.md, one row per kind of change.

Each incompatible row carries a *witness*: a record the old schema accepts and the new
one rejects, checked with a real validator, so the table itself cannot claim a break
that is not one.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import jsonschema
import pytest

from databus.catalog import CATALOG
from databus.schemas import Incompatibility, check_backward, dataset_schema, schema_files

_NO_WITNESS = object()


def closed(props: dict[str, Any], *required: str, **extra: Any) -> dict[str, Any]:
    """A closed object schema, as pydantic writes for ``extra="forbid"`` models."""
    return {
        "type": "object",
        "properties": props,
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


STR = {"type": "string"}
INT = {"type": "integer"}


def evidence(ref_props: dict[str, Any], *ref_required: str) -> dict[str, Any]:
    """A record with a list of nested objects through ``$ref``, like PensionStatus."""
    return {
        **closed({"evidence": {"type": "array", "items": {"$ref": "#/$defs/EvidenceRef"}}}),
        "$defs": {"EvidenceRef": closed(ref_props, *ref_required)},
    }


def node(props: dict[str, Any]) -> dict[str, Any]:
    """A recursive model: every node may hold a ``next`` node."""
    return {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": closed({"next": {"$ref": "#/$defs/Node"}, **props})},
    }


class Case(NamedTuple):
    old: dict[str, Any]
    new: dict[str, Any]
    breaks_at: str | None = None
    """The path of the expected incompatibility; ``None`` when compatible."""
    witness: Any = _NO_WITNESS
    """A record valid under ``old`` and invalid under ``new`` (incompatible rows only)."""


COMPATIBLE = {
    "add optional field": Case(closed({"a": STR}, "a"), closed({"a": STR, "b": INT}, "a")),
    "make required field optional": Case(closed({"a": STR}, "a"), closed({"a": STR})),
    "widen enum": Case({"enum": ["x", "y"]}, {"enum": ["x", "y", "z"]}),
    "drop enum for its type": Case({"type": "string", "enum": ["x"]}, STR),
    "integer to number": Case(INT, {"type": "number"}),
    "loosen minimum": Case({"type": "integer", "minimum": 1}, {"type": "integer", "minimum": 0}),
    "exclusive to inclusive minimum": Case(
        {"type": "number", "exclusiveMinimum": 0}, {"type": "number", "minimum": 0}
    ),
    "raise maxLength": Case({"type": "string", "maxLength": 8}, {"type": "string", "maxLength": 9}),
    "remove maxLength": Case({"type": "string", "maxLength": 8}, STR),
    "remove pattern and format": Case({"type": "string", "pattern": "^a", "format": "date"}, STR),
    "make nullable": Case(STR, {"anyOf": [STR, {"type": "null"}], "default": None}),
    "add anyOf branch": Case({"anyOf": [STR, INT]}, {"anyOf": [INT, STR, {"type": "boolean"}]}),
    "type list widened": Case({"type": ["string"]}, {"type": ["string", "null"]}),
    "enum into union of consts": Case(
        {"enum": ["x", "y"]}, {"anyOf": [{"const": "x"}, {"const": "y"}]}
    ),
    "closed to open model": Case(
        closed({"a": STR}), {**closed({"a": STR}), "additionalProperties": True}
    ),
    "annotations only": Case(
        closed({"a": {**STR, "title": "A"}}, "a"),
        closed(
            {"a": {**STR, "title": "B", "description": "d", "x-classification": "personal"}},
            "a",
            description="new words",
            examples=[{"a": "x"}],
        ),
    ),
    "nested $ref gains optional field": Case(
        evidence({"id": STR}, "id"), evidence({"id": STR, "note": STR}, "id")
    ),
    "nested $ref target renamed": Case(
        evidence({"id": STR}, "id"),
        {
            **closed({"evidence": {"type": "array", "items": {"$ref": "#/$defs/Ref"}}}),
            "$defs": {"Ref": closed({"id": STR}, "id")},
        },
    ),
    "recursive model unchanged": Case(node({"v": STR}), node({"v": STR})),
    "recursive model gains optional field": Case(node({}), node({"v": STR})),
    "raise maxItems": Case({"type": "array", "maxItems": 1}, {"type": "array", "maxItems": 2}),
    "multipleOf divides the old one": Case(
        {"type": "integer", "multipleOf": 10}, {"type": "integer", "multipleOf": 5}
    ),
}

INCOMPATIBLE = {
    "add required field": Case(
        closed({"a": STR}, "a"),
        closed({"a": STR, "b": INT}, "a", "b"),
        "#/properties/b",
        {"a": "x"},
    ),
    "make optional field required": Case(
        closed({"a": STR, "b": STR}), closed({"a": STR, "b": STR}, "b"), "#/properties/b", {}
    ),
    "remove field from closed model": Case(
        closed({"a": STR, "b": STR}, "a"),
        closed({"a": STR}, "a"),
        "#/properties/b",
        {"a": "x", "b": "y"},
    ),
    "narrow enum": Case({"enum": ["x", "y"]}, {"enum": ["x"]}, "#", "y"),
    "add enum": Case(STR, {"type": "string", "enum": ["x"]}, "#", "y"),
    "change const": Case({"const": "x"}, {"const": "y"}, "#", "x"),
    "number to integer": Case({"type": "number"}, INT, "#", 1.5),
    "string to integer": Case(STR, INT, "#", "1"),
    "tighten maxLength": Case(
        {"type": "string", "maxLength": 9}, {"type": "string", "maxLength": 8}, "#", "123456789"
    ),
    "add maxLength": Case(STR, {"type": "string", "maxLength": 1}, "#", "ab"),
    "raise minLength": Case(STR, {"type": "string", "minLength": 1}, "#", ""),
    "raise minimum": Case(
        {"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 1}, "#", 0
    ),
    "lower maximum": Case(
        {"type": "integer", "maximum": 10}, {"type": "integer", "maximum": 9}, "#", 10
    ),
    "inclusive to exclusive minimum": Case(
        {"type": "integer", "minimum": 0}, {"type": "integer", "exclusiveMinimum": 0}, "#", 0
    ),
    "add multipleOf": Case(INT, {"type": "integer", "multipleOf": 2}, "#", 3),
    "add pattern": Case(STR, {"type": "string", "pattern": "^a"}, "#", "b"),
    "change pattern": Case(
        {"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^ab"}, "#", "ac"
    ),
    "add format": Case(STR, {"type": "string", "format": "date"}, "#", "soon"),
    "change format": Case(
        {"type": "string", "format": "ipv4"}, {"type": "string", "format": "date"}, "#", "1.2.3.4"
    ),
    "remove null from anyOf": Case({"anyOf": [STR, {"type": "null"}]}, STR, "#", None),
    "remove anyOf branch": Case({"anyOf": [STR, INT]}, {"anyOf": [STR]}, "#", 1),
    "open model closed": Case(
        {"type": "object"}, {"type": "object", "additionalProperties": False}, "#", {"z": 1}
    ),
    "property added to open model": Case(
        {"type": "object", "properties": {"a": STR}},
        {"type": "object", "properties": {"a": STR, "b": INT}},
        "#/properties/b",
        {"b": "x"},
    ),
    "add minItems": Case({"type": "array"}, {"type": "array", "minItems": 1}, "#", []),
    "add uniqueItems": Case({"type": "array"}, {"type": "array", "uniqueItems": True}, "#", [1, 1]),
    "narrow array items": Case(
        {"type": "array", "items": {"type": "number"}},
        {"type": "array", "items": INT},
        "#/items",
        [0.5],
    ),
    "nested $ref tightened": Case(
        evidence({"id": STR}, "id"),
        evidence({"id": {"type": "string", "maxLength": 3}}, "id"),
        "#/properties/evidence/items/properties/id",
        {"evidence": [{"id": "abcd"}]},
    ),
    "nested $ref gains required field": Case(
        evidence({"id": STR}, "id"),
        evidence({"id": STR, "dataset": STR}, "id", "dataset"),
        "#/properties/evidence/items/properties/dataset",
        {"evidence": [{"id": "a"}]},
    ),
    "recursive model tightened": Case(
        node({"v": STR}),
        node({"v": {"type": "string", "maxLength": 2}}),
        "#/properties/v",
        {"v": "abc"},
    ),
    "inline object replaced by recursive ref": Case(
        closed({"next": closed({"next": STR})}),
        node({}),
        "#/properties/next/properties/next",
        {"next": {"next": "x"}},
    ),
    "unanalysed keyword added": Case(STR, {"type": "string", "not": {"const": "x"}}, "#", "x"),
}


@pytest.mark.parametrize(
    ("old", "new", "breaks_at", "witness"), COMPATIBLE.values(), ids=COMPATIBLE
)
def test_compatible_change(
    old: dict[str, Any], new: dict[str, Any], breaks_at: None, witness: object
) -> None:
    assert check_backward(old, new) == []


@pytest.mark.parametrize(
    ("old", "new", "breaks_at", "witness"), INCOMPATIBLE.values(), ids=INCOMPATIBLE
)
def test_incompatible_change(
    old: dict[str, Any], new: dict[str, Any], breaks_at: str, witness: object
) -> None:
    found = check_backward(old, new)
    assert [i.path for i in found] == [breaks_at], found


@pytest.mark.parametrize(
    ("old", "new", "breaks_at", "witness"), INCOMPATIBLE.values(), ids=INCOMPATIBLE
)
def test_incompatible_rows_have_a_real_witness(
    old: dict[str, Any], new: dict[str, Any], breaks_at: str, witness: object
) -> None:
    checker = jsonschema.FormatChecker()
    assert witness is not _NO_WITNESS
    assert jsonschema.Draft202012Validator(old, format_checker=checker).is_valid(witness)
    assert not jsonschema.Draft202012Validator(new, format_checker=checker).is_valid(witness)


def test_incompatibility_reads_as_path_and_message() -> None:
    problem = Incompatibility(path="#/properties/b", message="required property 'b' added")
    assert str(problem) == "#/properties/b: required property 'b' added"


def test_messages_say_what_changed() -> None:
    case = INCOMPATIBLE["narrow enum"]
    (problem,) = check_backward(case.old, case.new)
    assert problem.message == "enum values removed: 'y'"


def test_unresolvable_ref_is_reported_not_raised() -> None:
    found = check_backward(STR, {"$ref": "#/$defs/Missing"})
    assert [i.path for i in found] == ["#"]
    assert "cannot resolve $ref" in found[0].message


@pytest.mark.parametrize("file", schema_files(), ids=lambda f: str(f.relpath))
def test_every_generated_schema_is_compatible_with_itself(file: Any) -> None:
    assert check_backward(file.schema, file.schema) == []


class TestRealCatalog:
    """Changes to the bus form of hrss.pensioner.v1, as a developer would make them."""

    @pytest.fixture
    def pensioner(self) -> dict[str, Any]:
        return dataset_schema(CATALOG.get("hrss.pensioner.v1"), "bus")

    def test_adding_an_optional_property_is_compatible(self, pensioner: dict[str, Any]) -> None:
        new = copy.deepcopy(pensioner)
        new["properties"]["region_code"] = {"type": "string", "pattern": r"^\d{6}$"}
        assert check_backward(pensioner, new) == []

    def test_adding_a_required_property_is_incompatible(self, pensioner: dict[str, Any]) -> None:
        new = copy.deepcopy(pensioner)
        new["properties"]["region_code"] = {"type": "string", "pattern": r"^\d{6}$"}
        new["required"].append("region_code")
        found = check_backward(pensioner, new)
        assert [i.path for i in found] == ["#/properties/region_code"]
        assert "required" in found[0].message

    def test_dropping_a_property_is_incompatible(self, pensioner: dict[str, Any]) -> None:
        new = copy.deepcopy(pensioner)
        del new["properties"]["scheme"]
        new["required"].remove("scheme")
        assert [i.path for i in check_backward(pensioner, new)] == ["#/properties/scheme"]

    def test_reclassifying_a_field_is_not_a_compatibility_question(
        self, pensioner: dict[str, Any]
    ) -> None:
        new = copy.deepcopy(pensioner)
        new["properties"]["scheme"]["x-classification"] = "personal"
        assert check_backward(pensioner, new) == []
