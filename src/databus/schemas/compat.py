"""Backward compatibility of two JSON Schemas of the same dataset and major version.

A change is backward compatible when the *new* schema accepts every record that the
*old* schema accepted: consumers upgraded to the new schema can still read everything
already on the topic (Confluent's BACKWARD). The rules are conservative: a change that
cannot be proven safe is reported. The rule table is in ``docs/schemas.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Incompatibility", "check_backward"]

Schema = Mapping[str, Any] | bool

#: Keywords that never change which records validate (``x-*`` annotations too).
_ANNOTATIONS = frozenset(
    "$anchor $comment $defs $id $schema contentEncoding contentMediaType default definitions "
    "deprecated description discriminator examples readOnly title writeOnly".split()
)
#: Keywords compared here; any other keyword must stay as it was.
_UNDERSTOOD = frozenset(
    "$ref additionalProperties allOf anyOf const enum exclusiveMaximum exclusiveMinimum "
    "format items maxItems maxLength maxProperties maximum minItems minLength minProperties "
    "minimum multipleOf oneOf pattern patternProperties prefixItems properties required "
    "type uniqueItems".split()
)


@dataclass(frozen=True)
class Incompatibility:
    """One reason why a record valid under the old schema may fail the new one."""

    path: str
    """Where, as a JSON pointer that follows ``$ref``s (``#/properties/evidence/items``)."""
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_backward(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Incompatibility]:
    """Every reason why ``new`` may reject a record that ``old`` accepts; empty if none."""
    return _Comparison(old, new).compare(old, new, "#")


@dataclass
class _Comparison:
    """Holds both documents so that local ``$ref``s resolve in the right one."""

    old_root: Mapping[str, Any]
    new_root: Mapping[str, Any]
    _in_progress: set[tuple[str | int, str | int]] = field(default_factory=set)

    def compare(self, old: Schema, new: Schema, path: str) -> list[Incompatibility]:
        """Why ``old`` may accept a value that ``new`` rejects, after resolving ``$ref``."""
        pair = (_identity(old), _identity(new))
        if pair in self._in_progress:
            return []  # a recursive model: assume the pair holds while it is being proven
        try:
            old, new = _resolve(old, self.old_root), _resolve(new, self.new_root)
        except (KeyError, TypeError, ValueError) as exc:
            return [_inc(path, f"cannot resolve $ref: {exc}")]
        recursive = isinstance(pair[0], str) or isinstance(pair[1], str)
        if recursive:
            self._in_progress.add(pair)
        try:
            return self._compare(old, new, path)
        finally:
            if recursive:
                self._in_progress.discard(pair)

    def _compare(self, old: Schema, new: Schema, path: str) -> list[Incompatibility]:
        if new is True or old is False or _is_empty(new):
            found = []
        elif new is False:
            found = [_inc(path, "the new schema rejects every value here (false)")]
        elif old is True or _is_empty(old) or isinstance(old, bool) or isinstance(new, bool):
            found = [_inc(path, "a value that was unconstrained is now constrained")]
        elif "allOf" in new:
            rest = {k: v for k, v in new.items() if k != "allOf"}
            found = self._compare(old, rest, path)
            for i, part in enumerate(new["allOf"]):
                found += self.compare(old, part, f"{path}/allOf/{i}")
        elif "allOf" in old:
            parts = [{k: v for k, v in old.items() if k != "allOf"}, *old["allOf"]]
            proven = any(not self.compare(part, new, path) for part in parts)
            found = [] if proven else [_inc(path, "no part of the old allOf is still accepted")]
        elif (old_branches := _branches(old)) != [old]:
            found = [inc for b in old_branches for inc in self.compare(b, new, path)]
        elif len(new_branches := _branches(new)) != 1:
            found = self._new_union(old, new_branches, path)
        elif new_branches != [new]:
            found = self.compare(old, new_branches[0], path)
        else:
            found = self._compare_plain(old, new, path)
        return found

    def _new_union(
        self, old: Mapping[str, Any], branches: list[Schema], path: str
    ) -> list[Incompatibility]:
        """Each old value must fit one branch of the new ``anyOf``/``oneOf``/type list."""
        values = old.get("enum", [])
        if "const" not in old and len(values) > 1:
            return [
                inc for v in values for inc in self._new_union({**old, "enum": [v]}, branches, path)
            ]
        attempts = [self.compare(old, b, path) for b in branches]
        if any(not a for a in attempts):
            return []
        same_type = [a for a, b in zip(attempts, branches, strict=True) if _same_type(old, b)]
        if len(same_type) == 1:
            return same_type[0]
        return [_inc(path, f"no branch of the new union accepts {_describe(old)}")]

    def _compare_plain(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str
    ) -> list[Incompatibility]:
        found = _unknown_keywords(old, new, path)
        if "enum" in old or "const" in old:
            return found + _enumerated(old, new, path)
        problem = _type_problem(old.get("type"), new.get("type"))
        if problem:
            return [*found, _inc(path, problem)]
        found += [_inc(path, f"{k} {new[k]!r} added") for k in ("enum", "const") if k in new]
        found += _numbers(old, new, path)
        found += _strings(old, new, path)
        found += self._arrays(old, new, path)
        found += self._objects(old, new, path)
        return found

    def _arrays(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str
    ) -> list[Incompatibility]:
        found = _counts(old, new, path, "minItems", "maxItems")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            found.append(_inc(path, "uniqueItems added"))
        old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
        old_items, new_items = old.get("items", True), new.get("items", True)
        for i in range(max(len(old_prefix), len(new_prefix))):
            o = old_prefix[i] if i < len(old_prefix) else old_items
            n = new_prefix[i] if i < len(new_prefix) else new_items
            found += self.compare(o, n, f"{path}/prefixItems/{i}")
        return found + self.compare(old_items, new_items, f"{path}/items")

    def _objects(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str
    ) -> list[Incompatibility]:
        found = _counts(old, new, path, "minProperties", "maxProperties")
        for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
            what = "became required" if name in old.get("properties", {}) else "added as required"
            message = f"property {name!r} {what}: records written before may lack it"
            found.append(_inc(_prop_path(path, name), message))
        found += self._kept_or_removed(old, new, path)
        found += self._added(old, new, path)
        if old.get("patternProperties") != new.get("patternProperties"):
            found.append(_inc(path, "patternProperties changed"))
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if old_extra is not False and new_extra is False:
            found.append(_inc(path, "additionalProperties changed from allowed to false"))
        elif new_extra is not False:
            found += self.compare(old_extra, new_extra, f"{path}/additionalProperties")
        return found

    def _kept_or_removed(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str
    ) -> list[Incompatibility]:
        """Old properties must be accepted by the same property or whatever now covers it."""
        found = []
        new_props = new.get("properties", {})
        for name, old_prop in old.get("properties", {}).items():
            where = _prop_path(path, name)
            if name in new_props:
                found += self.compare(old_prop, new_props[name], where)
            elif _undeclared(new, name) == [False] and old_prop is not False:
                message = (
                    f"property {name!r} removed from a closed object "
                    "(additionalProperties: false): records that carry it are rejected"
                )
                found.append(_inc(where, message))
            else:
                for schema in _undeclared(new, name):
                    found += self.compare(old_prop, schema, where)
        return found

    def _added(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str
    ) -> list[Incompatibility]:
        """A new property is safe when old records could not carry it (closed model)."""
        found = []
        old_props = old.get("properties", {})
        for name, new_prop in new.get("properties", {}).items():
            if name in old_props:
                continue
            where = _prop_path(path, name)
            if any(
                s is not False and self.compare(s, new_prop, where) for s in _undeclared(old, name)
            ):
                message = (
                    f"property {name!r} added where the old schema allowed any value "
                    "under that name (open content model)"
                )
                found.append(_inc(where, message))
        return found


def _inc(path: str, message: str) -> Incompatibility:
    return Incompatibility(path=path, message=message)


def _prop_path(path: str, name: str) -> str:
    return f"{path}/properties/{name.replace('~', '~0').replace('/', '~1')}"


def _identity(schema: Schema) -> str | int:
    """A plain ``$ref`` is known by its target; anything else by the object itself, which
    stays alive (and so keeps its id) while it is being compared."""
    if isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        if all(k == "$ref" or _is_annotation(k) for k in schema):
            return str(schema["$ref"])
    return id(schema)


def _resolve(schema: Schema, root: Mapping[str, Any]) -> Schema:
    """Replace a local ``$ref`` by its target, keeping sibling keywords beside it."""
    seen: set[str] = set()
    while isinstance(schema, Mapping) and "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#") or ref in seen:
            raise ValueError(f"{ref!r} (only local, non-circular references are supported)")
        seen.add(ref)
        target: Any = root
        for token in filter(None, ref[1:].split("/")):
            target = target[token.replace("~1", "/").replace("~0", "~")]
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **siblings} if isinstance(target, Mapping) and siblings else target
    return schema


def _is_annotation(keyword: str) -> bool:
    return keyword in _ANNOTATIONS or keyword.startswith("x-")


def _is_empty(schema: Schema) -> bool:
    return isinstance(schema, Mapping) and all(_is_annotation(k) for k in schema)


def _branches(schema: Mapping[str, Any]) -> list[Schema]:
    """The alternatives of a schema: ``anyOf``/``oneOf`` branches, or one per listed type."""
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [
                b if isinstance(b, bool) or _is_empty(rest) else {**rest, **b} for b in schema[key]
            ]
    types = schema.get("type")
    if isinstance(types, list):
        return [{**schema, "type": t} for t in types]
    return [schema]


def _undeclared(schema: Mapping[str, Any], name: str) -> list[Schema]:
    """The subschemas that apply to a property the object does not declare by name."""
    patterns = schema.get("patternProperties", {})
    matching = [s for p, s in patterns.items() if re.search(p, name)]
    return matching or [schema.get("additionalProperties", True)]


def _same_type(old: Mapping[str, Any], branch: Schema) -> bool:
    return isinstance(branch, Mapping) and branch.get("type") == old.get("type")


def _describe(schema: Mapping[str, Any]) -> str:
    if "const" in schema:
        return f"the value {schema['const']!r}"
    if "enum" in schema:
        return f"the values {schema['enum']!r}"
    return f"values of type {schema.get('type', 'any')}"


def _unknown_keywords(
    old: Mapping[str, Any], new: Mapping[str, Any], path: str
) -> list[Incompatibility]:
    return [
        _inc(path, f"keyword {k!r} added or changed; its effect cannot be checked")
        for k in sorted(new)
        if not _is_annotation(k) and k not in _UNDERSTOOD and old.get(k) != new[k]
    ]


def _type_problem(old: Any, new: Any) -> str | None:
    if new is None or old == new or (old == "integer" and new == "number"):
        return None
    if old is None:
        return f"type {new} required of a value that could have any type"
    if old == "number" and new == "integer":
        return "type narrowed from number to integer"
    if old == "null":
        return f"null is no longer accepted (only {new})"
    return f"type changed from {old} to {new}"


def _enumerated(old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> list[Incompatibility]:
    """An old schema with a finite set of values: each of them must still be accepted."""
    if "const" in new and "const" in old and old["const"] != new["const"]:
        return [_inc(path, f"const changed from {old['const']!r} to {new['const']!r}")]
    values = [old["const"]] if "const" in old else list(old["enum"])
    rejected = [v for v in values if not _accepts(new, v)]
    if not rejected:
        return []
    shown = ", ".join(map(repr, rejected))
    if "enum" in new and all(v not in new["enum"] for v in rejected):
        return [_inc(path, f"enum values removed: {shown}")]
    return [_inc(path, f"values no longer accepted: {shown}")]


def _accepts(schema: Schema, value: Any) -> bool:
    """Whether a JSON value is valid under a schema; ``False`` when it cannot tell."""
    if isinstance(schema, bool):
        return schema
    judged = {"type", "const", "enum"} | (_SCALAR_CHECKS.keys() if _is_scalar(value) else set())
    if any(not (k in judged or _is_annotation(k)) for k in schema):
        return False
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types
    return (
        (types is None or any(_is_type(value, t) for t in types))
        and ("const" not in schema or _same_value(schema["const"], value))
        and ("enum" not in schema or any(_same_value(e, value) for e in schema["enum"]))
        and all(check(schema[k], value) for k, check in _SCALAR_CHECKS.items() if k in schema)
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


def _is_type(value: Any, json_type: str) -> bool:
    if json_type == "integer":
        return _number(value) and float(value).is_integer()
    kinds: dict[str, Any] = {"null": type(None), "boolean": bool, "string": str, "array": list}
    if json_type == "number":
        return _number(value)
    return isinstance(value, kinds.get(json_type, dict))


def _same_value(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


_SCALAR_CHECKS: dict[str, Any] = {
    "minimum": lambda bound, v: not _number(v) or v >= bound,
    "maximum": lambda bound, v: not _number(v) or v <= bound,
    "exclusiveMinimum": lambda bound, v: not _number(v) or v > bound,
    "exclusiveMaximum": lambda bound, v: not _number(v) or v < bound,
    "multipleOf": lambda step, v: not _number(v) or float(v / step).is_integer(),
    "minLength": lambda n, v: not isinstance(v, str) or len(v) >= n,
    "maxLength": lambda n, v: not isinstance(v, str) or len(v) <= n,
    "pattern": lambda p, v: not isinstance(v, str) or re.search(p, v) is not None,
}
"""Value checks for enumerated old values; ``format`` is left out, so it is never proven."""


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str) -> tuple[float, bool] | None:
    """The tighter of an inclusive and an exclusive bound, as ``(value, is_exclusive)``."""
    bounds = [(float(schema[k]), k == exclusive) for k in (inclusive, exclusive) if k in schema]
    if not bounds:
        return None
    if inclusive == "minimum":
        return max(bounds, key=lambda b: (b[0], b[1]))
    return min(bounds, key=lambda b: (b[0], not b[1]))


def _numbers(old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> list[Incompatibility]:
    """Lower bounds may only go down, upper bounds only up; ``multipleOf`` must divide."""
    found = []
    for inclusive, exclusive, sign in (
        ("minimum", "exclusiveMinimum", 1),
        ("maximum", "exclusiveMaximum", -1),
    ):
        new_b, old_b = _bound(new, inclusive, exclusive), _bound(old, inclusive, exclusive)
        if new_b is None:
            continue
        if old_b is None:
            found.append(_inc(path, f"{inclusive} added ({_show(new_b)})"))
        elif sign * (new_b[0] - old_b[0]) > 0 or (new_b[0] == old_b[0] and new_b[1] > old_b[1]):
            verb = "raised" if sign > 0 else "lowered"
            found.append(_inc(path, f"{inclusive} {verb} from {_show(old_b)} to {_show(new_b)}"))
    step = new.get("multipleOf")
    if step is not None and not float(old.get("multipleOf", math.nan) / step).is_integer():
        found.append(_inc(path, f"multipleOf {step} added or changed"))
    return found


def _show(bound: tuple[float, bool]) -> str:
    value = int(bound[0]) if bound[0].is_integer() else bound[0]
    return f"{value} (exclusive)" if bound[1] else str(value)


def _strings(old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> list[Incompatibility]:
    """Length limits may only loosen; a ``pattern`` or ``format`` may not appear or change."""
    found = _counts(old, new, path, "minLength", "maxLength")
    for key in ("pattern", "format"):
        if key not in new or old.get(key) == new[key]:
            continue
        if key in old:
            found.append(_inc(path, f"{key} changed from {old[key]!r} to {new[key]!r}"))
        else:
            found.append(_inc(path, f"{key} {new[key]!r} added"))
    return found


def _counts(
    old: Mapping[str, Any], new: Mapping[str, Any], path: str, low: str, high: str
) -> list[Incompatibility]:
    """Size limits: a lower limit may only go down, an upper limit only up."""
    found = []
    if new.get(low, 0) > old.get(low, 0):
        found.append(_inc(path, f"{low} raised from {old.get(low, 0)} to {new[low]}"))
    if high in new and high not in old:
        found.append(_inc(path, f"{high} added ({new[high]})"))
    elif high in new and new[high] < old[high]:
        found.append(_inc(path, f"{high} lowered from {old[high]} to {new[high]}"))
    return found
