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
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import fastjsonschema
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
    interpreted = ParamsValidator(schema, registry=_NO_RETRIEVAL)
    if compilable(schema):
        try:
            return CompiledValidator(schema, interpreted)
        except Exception:  # noqa: BLE001 - a pattern Python's `re` cannot compile, say: interpreted
            return interpreted
    return interpreted


# --- Compiled validation (decision 0015) ---------------------------------------------------
# fastjsonschema turns a schema into Python code, about 10-20x faster than interpreting it, but
# it knows drafts 4-7, not 2020-12, and compiles patterns with Python's `re`. So a schema is
# compiled only when every keyword in it means the same in both (below), and the compiled code's
# patterns are swapped for RE2 (governance.regex, the engine of every policy pattern) before it
# runs on any input. Any other schema keeps the interpreted validator above. A compiled no whose
# first error says what is wrong on its own is final and described from that error (the
# interpreted validator's wording, so a refusal costs what an allowed call costs: issue 13);
# any other compiled no is asked again of the interpreted validator. The two validators are
# tested to agree on every verdict (tests/governance/test_paramschema_compiled.py).
_SAME_KEYWORDS = frozenset(
    {
        "type", "enum", "const", "required", "minLength", "maxLength", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "uniqueItems",
        "minProperties", "maxProperties", "format", "title", "description", "default",
        "examples", "$comment", "deprecated", "readOnly", "writeOnly",
    }
)  # fmt: skip
_ONE_SUBSCHEMA = frozenset({"additionalProperties", "not", "if", "then", "else", "propertyNames", "contains", "items"})
_SUBSCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf"})
_SUBSCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})


def compilable(schema: Any, *, root: bool = True) -> bool:
    """Whether every keyword of the schema means the same to fastjsonschema as to 2020-12."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict):
        return False
    for keyword, value in schema.items():
        if keyword in _SAME_KEYWORDS or (keyword == "$schema" and root):
            continue
        if keyword == "pattern" and isinstance(value, str):
            continue
        if keyword == "multipleOf" and isinstance(value, int) and not isinstance(value, bool):
            continue  # a float divisor: the two differ on rounding (0.3 multipleOf 0.1)
        if keyword in _ONE_SUBSCHEMA and isinstance(value, (dict, bool)):
            if not compilable(value, root=False):
                return False
            continue
        if keyword in _SUBSCHEMA_LISTS and isinstance(value, list):
            if not all(compilable(v, root=False) for v in value):
                return False
            continue
        if keyword in _SUBSCHEMA_MAPS and isinstance(value, dict):
            if not all(compilable(v, root=False) for v in value.values()):
                return False
            continue
        return False  # $ref, prefixItems, unevaluated*, dependent*, ...: interpreted
    return True


class _RE2Search:
    """What the compiled code calls `.search()` on, answered by RE2. A text RE2 cannot read
    raises, so the interpreted validator decides that call."""

    def __init__(self, pattern: str):
        self._regex = compile_regex(pattern)

    def search(self, text: str) -> bool:
        found = self._regex.search(text)
        if found is None:
            raise ValueError("unreadable text")
        return found


# The compiled check's first error becomes the refusal's error when its keyword says all that
# is wrong on its own; for these, the message is the interpreted validator's own wording. Any
# other refusal (inside anyOf/oneOf/not/if, a pattern RE2 cannot read, additionalProperties
# beside patternProperties) is described by the interpreted validator.
_LEAF_RULES = frozenset(
    {
        "type", "enum", "const", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
        "pattern", "multipleOf", "required", "additionalProperties",
    }
)  # fmt: skip


def _compiled_error(exc: Exception) -> ValidationError | None:
    """The compiled check's refusal as a jsonschema error, or None when it cannot say it alone."""
    if not isinstance(exc, fastjsonschema.JsonSchemaValueException) or exc.rule not in _LEAF_RULES:
        return None
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    value, rule = exc.value, exc.rule
    if rule == "required":
        missing = [name for name in definition.get("required", ()) if not (isinstance(value, dict) and name in value)]
        if not missing:
            return None
        message = f"{missing[0]!r} is a required property"
    elif rule == "additionalProperties":
        if "patternProperties" in definition or not isinstance(value, dict):
            return None
        extras = sorted((k for k in value if k not in definition.get("properties", {})), key=str)
        if not extras:
            return None
        verb = "was" if len(extras) == 1 else "were"  # jsonschema's own wording
        message = f"Additional properties are not allowed ({', '.join(map(repr, extras))} {verb} unexpected)"
    else:
        message = f"does not satisfy {rule}"  # decide() shows the keyword and its value, not this
    # The path is for display only (decide() joins it with dots): drop the generated code's root name.
    return ValidationError(message, validator=rule, validator_value=exc.rule_definition, path=exc.path[1:])


class CompiledValidator:
    """is_valid() through the compiled check. A refusal is final (a compiled no never becomes a
    yes), and is described from the compiled check's first error when that error says it alone;
    otherwise the interpreted validator describes it."""

    def __init__(self, schema: Mapping[str, Any] | bool, interpreted: Any):
        body: dict[str, Any] | bool = (
            {k: v for k, v in schema.items() if k != "$schema"} if isinstance(schema, Mapping) else bool(schema)
        )
        # use_default=False: validating must never write defaults into the caller's parameters.
        check = fastjsonschema.compile(body, use_default=False, use_formats=False)
        patterns = check.__globals__["REGEX_PATTERNS"]  # the generated code's only use of `re`
        for pattern in list(patterns):
            patterns[pattern] = _RE2Search(pattern)
        self._check = check
        self._interpreted = interpreted
        self._last = threading.local()

    def is_valid(self, instance: Any) -> bool:
        try:
            self._check(instance)
            return True
        except fastjsonschema.JsonSchemaValueException as exc:
            error = _compiled_error(exc)
            if error is not None:
                # decide() asks for the errors of a refused call next: keep them for that one call.
                self._last.value = (instance, [error])
                return False
            return self._ask_interpreted(instance)
        except Exception:  # noqa: BLE001 - anything unexpected (RE2 cannot read a text): interpreted
            return self._ask_interpreted(instance)

    def _ask_interpreted(self, instance: Any) -> bool:
        errors = list(self._interpreted.iter_errors(instance))
        self._last.value = (instance, errors) if errors else None
        return not errors

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        last = getattr(self._last, "value", None)
        self._last.value = None
        if last is not None and last[0] is instance:
            return iter(last[1])
        return self._interpreted.iter_errors(instance)  # type: ignore[no-any-return]


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
