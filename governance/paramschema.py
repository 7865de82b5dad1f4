"""Validating an action's `params_schema`: JSON Schema 2020-12, self-contained, with RE2 patterns.

decide() must be pure, so a schema may only refer to itself: `$ref` and `$dynamicRef` must
start with `#` and resolve inside the schema, and the validator's registry cannot retrieve
anything (a reference it does not hold is an error, never a download). Patterns (`pattern`,
`patternProperties`) use the policy dialect of governance.regex, the same engine as the
`matches` operator. `policy_apply` refuses a schema that breaks any of this (`schema_problems`);
a stored schema that breaks it anyway refuses every call, so an old policy fails closed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from governance.regex import RegexError, compile_regex

DIALECTS = {"https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#"}
_NO_RETRIEVAL: Registry[Any] = Registry()  # its retrieve() always raises: no I/O, ever


def _search(pattern: str, text: str) -> bool | None:
    try:
        return compile_regex(pattern).search(text)
    except RegexError:
        return None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and _search(pattern, instance) is not True:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")  # decide() shows the keyword, not this


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key in instance:
            found = _search(pattern, key)
            if found is None:
                yield ValidationError(f"a property name cannot be read against {pattern!r}")
            elif found:
                yield from validator.descend(instance[key], subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = sorted((k for k in instance if k not in properties and not any(_search(p, k) for p in patterns)), key=str)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        verb = "was" if len(extras) == 1 else "were"  # jsonschema's own wording
        yield ValidationError(
            f"Additional properties are not allowed ({', '.join(map(repr, extras))} {verb} unexpected)"
        )


ParamsValidator = validators.extend(
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


class RefusingValidator:
    """Stands in for a stored schema that can no longer be used: every call is refused."""

    def __init__(self, problem: str):
        self.problem = problem

    def is_valid(self, instance: Any) -> bool:
        return False

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        yield ValidationError(f"the action's params_schema cannot be used: {self.problem}", validator="params_schema")


def params_validator(schema: Mapping[str, Any] | bool) -> Any:
    """A validator that does no I/O, or a RefusingValidator when schema_problems() finds any."""
    try:
        key = json.dumps(schema, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return RefusingValidator("it is not JSON")
    return _validator_for(key)


@functools.lru_cache(maxsize=512)
def _validator_for(key: str) -> Any:
    schema = json.loads(key)
    problems = schema_problems(schema)
    if problems:
        return RefusingValidator("; ".join(problems))
    return ParamsValidator(schema, registry=_NO_RETRIEVAL)


def _walk(resource: Any, resolver: Any, where: str, problems: list[str], seen: dict[str, bool]) -> None:
    resolver = resolver.in_subresource(resource)
    contents = resource.contents
    if isinstance(contents, dict):
        for keyword in ("$ref", "$dynamicRef"):
            ref = contents.get(keyword)
            if not isinstance(ref, str):
                continue
            if not ref.startswith("#"):
                problems.append(
                    f"{where}{keyword} {ref!r} points outside the schema; a params_schema must be "
                    "self-contained (use '#/$defs/...'), because deciding never fetches anything"
                )
                continue
            try:
                resolver.lookup(ref)
            except Unresolvable:
                problems.append(f"{where}{keyword} {ref!r} does not resolve inside the schema")
        patterns = [contents["pattern"]] if isinstance(contents.get("pattern"), str) else []
        if isinstance(contents.get("patternProperties"), dict):
            patterns.extend(contents["patternProperties"])
            seen["patternProperties"] = True
        if "unevaluatedProperties" in contents:
            seen["unevaluatedProperties"] = True
        for pattern in patterns:
            try:
                compile_regex(pattern)
            except RegexError as exc:
                problems.append(f"{where}pattern {pattern!r}: {exc}")
    for sub in resource.subresources():
        _walk(sub, resolver, where, problems, seen)


def schema_problems(schema: Any) -> list[str]:
    """Why a params_schema cannot be applied; an empty list when it can."""
    if not isinstance(schema, (dict, bool)):
        return ["a params_schema must be a JSON object"]
    try:
        # Without a format checker: the metaschema's "format: regex" would compile patterns with
        # Python's engine, and the policy dialect is RE2, checked below.
        Draft202012Validator.check_schema(schema, format_checker=None)
    except SchemaError as exc:
        return [f"not a valid JSON schema: {exc.message}"]
    if isinstance(schema, bool):
        return []
    dialect = schema.get("$schema")
    if dialect is not None and dialect not in DIALECTS:
        return [f"$schema {dialect!r}: params_schema is JSON Schema 2020-12; remove $schema or name 2020-12"]
    problems: list[str] = []
    seen: dict[str, bool] = {}
    root = DRAFT202012.create_resource(schema)
    _walk(root, _NO_RETRIEVAL.resolver_with_root(root), "", problems, seen)
    if seen.get("patternProperties") and seen.get("unevaluatedProperties"):
        problems.append(
            "unevaluatedProperties together with patternProperties is not supported "
            "(use additionalProperties next to patternProperties)"
        )
    return problems
