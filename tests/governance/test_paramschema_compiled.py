"""Compiled parameter validation (decision 0015) says what the interpreted validator says,
with patterns on RE2."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from governance.paramschema import CompiledValidator, ParamsValidator, _RE2Search, compilable, params_validator
from governance.policyfile import from_document, load
from tests.conftest import EXAMPLE_POLICY

SCHEMAS = [
    spec["params_schema"]
    for spec in from_document(load(EXAMPLE_POLICY.read_text()))["action_types"].values()
    if spec.get("params_schema")
]
EXTRA = [
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["n"]},
    {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"enum": ["a", 1, True]}, "uniqueItems": True}},
    },
    {"type": "object", "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False},
    {"anyOf": [{"type": "object", "required": ["a"]}, {"type": "object", "required": ["b"]}]},
    {"type": "object", "properties": {"c": {"const": 1}, "s": {"type": "string", "pattern": "^[A-Z]{2}$"}}},
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-20, 20) | st.floats(-20, 20, allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(["customer_id", "amount", "currency", "reason", "n", "tags", "x-a", "a", "b", "c", "s", "zz"])
params = st.dictionaries(keys, json_values, max_size=5)


def test_it_compiles_every_schema_of_the_example_policy() -> None:
    assert SCHEMAS and all(isinstance(params_validator(s), CompiledValidator) for s in SCHEMAS)


def test_it_keeps_the_interpreter_for_keywords_that_differ() -> None:
    assert not compilable({"type": "number", "multipleOf": 0.1})  # 0.3: the two disagree on rounding
    assert not compilable({"prefixItems": [{"type": "string"}]})
    assert not compilable({"$ref": "#/$defs/a", "$defs": {"a": {"type": "string"}}})
    assert not isinstance(params_validator({"unevaluatedProperties": False}), CompiledValidator)


@settings(max_examples=300, deadline=None)
@given(schema=st.sampled_from(SCHEMAS + EXTRA), instance=params)
def test_it_agrees_with_the_interpreted_validator(schema, instance) -> None:
    compiled = params_validator(schema)
    assert isinstance(compiled, CompiledValidator)
    assert compiled.is_valid(instance) == ParamsValidator(schema).is_valid(instance)


def test_it_runs_patterns_on_re2() -> None:
    """A pattern that backtracks for ever in Python's `re` (this test would never end) is
    answered at once: the compiled code searches with RE2."""
    compiled = params_validator({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}})
    assert isinstance(compiled, CompiledValidator)
    assert all(isinstance(p, _RE2Search) for p in compiled._check.__globals__["REGEX_PATTERNS"].values())
    assert not compiled.is_valid({"s": "a" * 5000 + "b"})
    assert compiled.is_valid({"s": "aaaa"})


def test_it_never_writes_defaults_into_the_parameters() -> None:
    compiled = params_validator({"type": "object", "properties": {"a": {"type": "string", "default": "x"}}})
    given_params: dict = {}
    assert compiled.is_valid(given_params) and given_params == {}


REFUSALS = {"compiled": 0, "single": 0}


def _messages(validator, instance) -> list[tuple[str, str, str]]:
    return [
        (e.validator, json.dumps(e.validator_value, sort_keys=True), ".".join(map(str, e.absolute_path)))
        for e in validator.iter_errors(instance)
    ]


@settings(max_examples=400, deadline=None)
@given(schema=st.sampled_from(SCHEMAS + EXTRA), instance=params)
def test_a_compiled_refusal_names_an_error_the_interpreter_finds(schema, instance) -> None:
    """A refusal described from the compiled check (issue 13: a refusal costs what an allowed
    call costs) names a keyword, value and place the interpreted validator also reports; with
    one problem only, decide() gives the very same reason on either validator."""
    from governance.policy import _schema_problem

    # Both read the schema as params_validator() keeps it (keys sorted), so values print alike.
    compiled, interpreted = params_validator(schema), ParamsValidator(json.loads(json.dumps(schema, sort_keys=True)))
    if compiled.is_valid(instance):
        return
    mine = _messages(compiled, instance)
    theirs = _messages(interpreted, instance)
    assert mine and all(m in theirs for m in mine), (mine, theirs)
    REFUSALS["compiled"] += 1
    if len(theirs) == 1:
        REFUSALS["single"] += 1
        assert _schema_problem(compiled, instance) == _schema_problem(interpreted, instance)


def test_the_refusal_property_reached_its_assertions() -> None:
    """Runs after the property above (file order): its examples were refusals, many with one problem."""
    assert REFUSALS["compiled"] >= 50 and REFUSALS["single"] >= 10, REFUSALS
