"""Lint: what a policy file says that is valid but cannot be what its author meant.

- a condition on a parameter the action's schema does not have (a misspelt parameter is
  missing on every call, so the condition always holds and the tier is always raised);
- an egress parameter the schema does not have (the destination check would see nothing);
- a parameter schema that nothing can satisfy (every call is refused).

(A webhook destination without a scheme is refused by governance.destinations.webhook_problem,
the one check of what a webhook destination may be, which the loader calls.)

Each problem is `path: message`, like every other error of a policy file, and stops the apply.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from governance.conditions import parse_path
from governance.regex import compile_regex

_BOUNDS = (
    ("minimum", "maximum", False),
    ("exclusiveMinimum", "maximum", True),
    ("minimum", "exclusiveMaximum", True),
    ("exclusiveMinimum", "exclusiveMaximum", True),
    ("minLength", "maxLength", False),
    ("minItems", "maxItems", False),
    ("minProperties", "maxProperties", False),
    ("minContains", "maxContains", False),
)
_OPAQUE = ("$ref", "$dynamicRef", "allOf", "anyOf", "oneOf", "if", "dependentSchemas", "unevaluatedProperties")


def lint(doc: Mapping[str, Any], actions: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every lint problem of a (structurally valid) document. `actions`: name -> action spec,
    from the file and from the other packages in the database."""
    errors: list[str] = []
    for i, action in enumerate(doc.get("action_types") or []):
        schema = action.get("params_schema") or {}
        why = unsatisfiable(schema, root=True)
        if why:
            errors.append(f"action_types[{i}].params_schema: nothing can satisfy this schema: {why}")
        for where, param in _params(action.get("egress"), f"action_types[{i}].egress"):
            if not _has_param(schema, param):
                errors.append(f"{where}: egress parameter {param!r} is not in the schema of {action.get('name')!r}")
    for i, workflow in enumerate(doc.get("workflows") or []):
        for j, tier in enumerate(workflow.get("tiers") or []):
            spec = actions.get(tier.get("action"))
            if spec is None:
                continue  # an unknown action is reported by the reference checks
            schema = spec.get("params_schema") or {}
            for where, param in _params(tier.get("conditions"), f"workflows[{i}].tiers[{j}].conditions"):
                if not _has_param(schema, param):
                    errors.append(
                        f"{where}: parameter {param!r} is not in the schema of {tier['action']!r} "
                        "(a missing parameter makes the condition hold on every call)"
                    )
    return errors


def _params(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every `param` in a condition or egress declaration, however they nest, with its place."""
    if isinstance(value, dict):
        if isinstance(value.get("param"), str):
            yield f"{path}.param", value["param"]
        for key, child in value.items():
            if key != "value" and isinstance(child, (dict, list)):
                yield from _params(child, f"{path}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _params(child, f"{path}[{i}]")


def _has_param(schema: Any, param: str) -> bool:
    """False only when the schema shows that the parameter cannot be there: it lists its
    properties, the name is not among them, and nothing else admits it."""
    if param.startswith("session."):
        return True  # a session fact, not a parameter
    try:
        segments = parse_path(param)
    except ValueError:
        return True  # a malformed path is reported by the condition checks
    for name, star in segments:
        if not isinstance(schema, dict) or any(k in schema for k in _OPAQUE):
            return True
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return True
        if name in properties:
            schema = properties[name]
        elif any(_matches(p, name) for p in schema.get("patternProperties") or {}):
            return True
        elif isinstance(schema.get("additionalProperties"), dict) and schema["additionalProperties"]:
            return True
        else:
            return False
        if star:
            schema = schema.get("items") if isinstance(schema, dict) else None
    return True


def _matches(pattern: str, name: str) -> bool:
    try:
        return compile_regex(pattern).search(name) is True
    except ValueError:
        return True


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_admits(types: Any, value: Any) -> bool:
    if not isinstance(types, (str, list)):
        return True
    allowed = {types} if isinstance(types, str) else {t for t in types if isinstance(t, str)}
    kind = _json_type(value)
    return kind in allowed or (kind == "integer" and "number" in allowed)


def unsatisfiable(schema: Any, *, root: bool = False) -> str | None:
    """Why no value can satisfy `schema`, for the cases an author meets; None when it may be
    satisfiable (the check is sound, not complete)."""
    if schema is False:
        return "the schema is `false`"
    if not isinstance(schema, dict):
        return None
    types = schema.get("type")
    listed = [types] if isinstance(types, str) else types if isinstance(types, list) else None
    if listed is not None and not listed:
        return "`type` allows no type"
    if root and listed is not None and "object" not in listed:
        return f"the parameters are a JSON object, but `type` is {types!r}"
    if "enum" in schema and isinstance(schema["enum"], list):
        if not schema["enum"]:
            return "`enum` is empty"
        if not any(_type_admits(types, v) for v in schema["enum"]):
            return f"no value of `enum` has the type {types!r}"
    if "const" in schema and not _type_admits(types, schema["const"]):
        return f"`const` {schema['const']!r} does not have the type {types!r}"
    if schema.get("not") in ({}, True):
        return "`not` of a schema that accepts everything"
    for low, high, strict in _BOUNDS:
        a, b = schema.get(low), schema.get(high)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            if a > b or (strict and a >= b):
                return f"`{low}` {a} is above `{high}` {b}"
    for member in schema.get("allOf") or []:
        why = unsatisfiable(member, root=root)
        if why:
            return f"in allOf: {why}"
    for key in ("anyOf", "oneOf"):
        members = schema.get(key)
        if isinstance(members, list) and members and all(unsatisfiable(m, root=root) for m in members):
            return f"no member of {key} can be satisfied"
    admits_object = listed is None or "object" in listed
    required = schema.get("required") if admits_object else None
    if isinstance(required, list):
        properties: dict[str, Any] = schema["properties"] if isinstance(schema.get("properties"), dict) else {}
        patterns = schema.get("patternProperties") or {}
        max_props = schema.get("maxProperties")
        if isinstance(max_props, int) and len(set(required)) > max_props:
            return f"{len(set(required))} required properties, but `maxProperties` is {max_props}"
        for name in required:
            if not isinstance(name, str):
                continue
            if name in properties:
                why = unsatisfiable(properties[name])
                if why:
                    return f"required property {name!r} can never be valid: {why}"
            elif schema.get("additionalProperties") is False and not any(_matches(p, name) for p in patterns):
                return f"property {name!r} is required, but `additionalProperties: false` and `properties` leave it out"
    return None
