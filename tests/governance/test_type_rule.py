"""Issue 17 by example: one type rule for every operator, one regex dialect, addresses read as a
mail client reads them. Each class of the issue, then README's table row by row."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.conditions import compile_condition
from governance.hosts import hosts_in
from governance.policy import build_snapshot, decide
from governance.policyfile import PolicyError, load

ACTION = "svc.act"


def tier_of(base: int, condition: dict[str, Any], params: dict[str, Any], schema: dict | None = None) -> int | None:
    actions = {
        ACTION: {"system": "svc", "mode": "read", "data_objects": ["svc.obj"], "params_schema": schema or {}},
    }
    workflow = {
        "name": "w",
        "access": [{"data_object": "svc.obj", "mode": "read"}],
        "tiers": [{"action": ACTION, "tier": base, "conditions": [condition]}],
    }
    lists = {"company": ["example.com"]}
    return decide(build_snapshot(workflow, actions, lists), ACTION, params).tier


# -- Class 1: booleans are never numbers --------------------------------------------------------


def test_true_is_not_1_for_not_in() -> None:
    assert tier_of(3, {"param": "id[*]", "op": "not_in", "value": [1], "tier": 4}, {"id": [True]}) == 4


def test_false_is_not_0_for_ne() -> None:
    assert tier_of(3, {"param": "link", "op": "ne", "value": 0, "tier": 4}, {"link": False}) == 4


def test_1_is_not_true_and_1_0_is_1() -> None:
    eq_true = {"param": "flag", "op": "ne", "value": True, "tier": 4}
    assert tier_of(2, eq_true, {"flag": 1}) == 4  # a number where a boolean is compared
    assert tier_of(2, eq_true, {"flag": True}) == 2
    assert tier_of(2, {"param": "n", "op": "ne", "value": 1, "tier": 4}, {"n": 1.0}) == 2


# -- Class 2: eq, in and present with a value of another JSON type -----------------------------


def test_eq_with_an_array_holds() -> None:
    assert tier_of(2, {"param": "to", "op": "eq", "value": "KP", "tier": 4}, {"to": []}) == 4


def test_in_with_a_number_among_strings_holds() -> None:
    assert tier_of(2, {"param": "user", "op": "in", "value": ["root"], "tier": 3}, {"user": 2}) == 3


def test_present_through_a_non_object_holds() -> None:
    present = {"param": "id.x", "op": "present", "tier": 4}
    assert tier_of(2, present, {"id": True}) == 4
    assert tier_of(2, present, {"id": {}}) == 2  # absent: does not hold
    assert tier_of(2, present, {"id": {"x": None}}) == 4  # present, whatever its value


# -- Class 3: schema patterns in the policy dialect (RE2, ASCII \d, $ at the very end) ---------


@pytest.mark.parametrize("code, allowed", [("123", True), ("١٢٣", False), ("123\n", False), ("12a", False)])
def test_a_schema_pattern_refuses_other_digits_and_a_trailing_newline(code, allowed) -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^\\d+$"}}}
    tier = tier_of(1, {"param": "code", "op": "present", "tier": 2}, {"code": code}, schema)
    assert (tier is not None) is allowed


@pytest.mark.parametrize("text, holds", [("123", True), ("١٢٣", False), ("123\n", False), ("x\ud800", True)])
def test_matches_uses_the_same_dialect(text, holds) -> None:
    # 'x\ud800' is not valid Unicode: it cannot be matched, so the condition holds.
    assert (
        compile_condition({"param": "p", "op": "matches", "value": "^\\d+$", "tier": 3}, {}).holds({"p": text}) is holds
    )


def test_schema_patterns_and_matches_share_one_engine() -> None:
    from governance.conditions import Condition
    from governance.paramschema import params_validator
    from governance.regex import Regex

    cond = compile_condition({"param": "p", "op": "matches", "value": "a", "tier": 3}, {})
    assert isinstance(cond, Condition) and isinstance(cond.pattern, Regex)
    validator = params_validator({"patternProperties": {"^\\d$": {"type": "string"}}})
    assert validator.is_valid({"1": "x"}) and not validator.is_valid({"1": 1})
    assert validator.is_valid({"١": 1})  # an Arabic-Indic digit is not \d, so no pattern applies


# -- Class 4: addresses in brackets, mailto: and fragments --------------------------------------


@pytest.mark.parametrize(
    "value", ["(jürgen@example.com)", "mailto:a@support.example.com#x", "<ann@example.com>;", "'bob@EXAMPLE.com',"]
)
def test_an_address_in_punctuation_or_a_mailto_link_is_in_its_domain(value) -> None:
    assert tier_of(2, {"param": "to", "op": "domain_in", "list": "company", "tier": 3}, {"to": value}) == 3
    assert tier_of(2, {"param": "to", "op": "domain_not_in", "list": "company", "tier": 3}, {"to": value}) == 2


# -- README's table, row by row --------------------------------------------------------------------


def holds(spec: dict[str, Any], value: Any) -> bool:
    return compile_condition({"param": "p", "tier": 3, **spec}, {}).holds({"p": value})


@pytest.mark.parametrize(
    "spec, value, expected",
    [
        ({"op": "gt", "value": 0}, True, True),
        ({"op": "gt", "value": 0}, math.nan, True),
        ({"op": "lt", "value": 0}, math.inf, True),
        ({"op": "gt", "value": 0}, -1, False),
        ({"op": "eq", "value": [1, "a"]}, [1.0, "a"], True),
        ({"op": "ne", "value": [1, "a"]}, [True, "a"], True),
        ({"op": "ne", "value": {"k": 1}}, {"k": 1}, False),
        ({"op": "eq", "value": None}, None, True),
        ({"op": "ne", "value": None}, None, False),
        ({"op": "ne", "value": None}, 0, True),
        ({"op": "in", "value": []}, "anything", True),
        ({"op": "in", "value": ["a", 1]}, 2, False),
        ({"op": "not_in", "value": ["a", 1]}, 2, True),
        ({"op": "in", "value": ["a", None]}, None, True),
        ({"op": "not_in", "value": ["a"]}, ["a"], True),
        ({"op": "matches", "value": "a"}, 1, True),
        ({"op": "domain_in", "value": ["example.com"]}, "nodomain", False),  # one word without . : @ % names no host
        ({"op": "domain_in", "value": ["example.com"]}, "e.g.", True),
        ({"op": "domain_in", "value": ["example.com"]}, "no links here", False),
        ({"op": "domain_not_in", "value": ["example.com"]}, "no links here", False),
        ({"op": "domain_not_in", "value": ["example.com"]}, ["x@example.com"], True),
    ],
)
def test_readme_table(spec, value, expected) -> None:
    assert holds(spec, value) is expected


def test_every_star_element_counts_and_an_empty_list_has_none() -> None:
    cond = compile_condition({"param": "l[*].x", "op": "gt", "value": 5, "tier": 3}, {})
    assert cond.holds({"l": [{"x": 1}, {"x": True}]})  # true is not a number
    assert cond.holds({"l": [1]})  # through a non-object
    assert not cond.holds({"l": []})
    assert not cond.holds({"l": [{"x": 1}, {"x": 2.5}]})


@pytest.mark.parametrize(
    "condition, message",
    [
        ({"param": "a", "op": "in", "value": [[1]]}, "must be strings, numbers, booleans or null"),
        ({"param": "a", "op": "domain_in", "value": ["https://example.com/x"]}, "is not a domain name"),
        ({"param": "a", "op": "matches", "value": "(?=x)"}, "invalid regular expression"),
        ({"param": "a", "op": "matches", "value": "(a)\\1"}, "no backreferences"),
    ],
)
def test_policy_apply_refuses_what_the_rule_cannot_compare(condition, message) -> None:
    text = f"""
version: 1
systems: [{{name: svc, connector: demo}}]
data_objects: [{{name: svc.obj, system: svc}}]
action_types: [{{name: svc.act, system: svc, mode: read, data_objects: [svc.obj]}}]
workflows:
  - name: w
    access: [{{data_object: svc.obj, mode: read}}]
    tiers: [{{action: svc.act, tier: 1, conditions: [{{{", ".join(f"{k}: {v!r}" for k, v in condition.items())}, tier: 3}}]}}]
"""
    with pytest.raises(PolicyError, match="conditions"):
        load(text.replace("'", '"'))
    with pytest.raises(ValueError, match=message.replace("(", "\\(")):
        compile_condition({**condition, "tier": 3}, {})


def test_a_stored_condition_that_no_longer_compiles_always_holds() -> None:
    # Applied before RE2 (Python's engine accepted lookahead): it must fail closed, not crash.
    assert tier_of(2, {"param": "p", "op": "matches", "value": "(?=x)", "tier": 3}, {"p": "y"}) == 3


# -- Hostile text never breaks a decision --------------------------------------------------------

_ANY_CHAR = st.characters(exclude_categories=())  # surrogates and controls included
_LINKISH = st.sampled_from(["https://", "mailto:", "@", ".", "[", "]", "(", ")", "\\", "%2e", "xn--", "。", "\t", " "])
_HOSTILE_TEXT = st.lists(st.one_of(st.text(_ANY_CHAR, max_size=6), _LINKISH), max_size=12).map("".join)


@settings(max_examples=500, deadline=None)
@given(_HOSTILE_TEXT)
def test_host_reading_never_raises(text) -> None:
    found = hosts_in(text)
    assert found is None or all(isinstance(h, str) and h for h in found)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["domain_in", "domain_not_in", "matches", "eq", "in", "gt", "present"]),
    st.recursive(
        st.one_of(_HOSTILE_TEXT, st.floats(), st.integers(), st.booleans(), st.none()),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["p", "x"]), inner, max_size=2),
        max_leaves=6,
    ),
)
def test_any_value_gets_an_answer(op, value) -> None:
    spec: dict[str, Any] = {"param": "p", "op": op, "tier": 3}
    spec["value"] = {"domain_in": ["example.com"], "domain_not_in": ["example.com"], "matches": "a", "in": ["a"]}.get(
        op, 1
    )
    assert compile_condition(spec, {}).holds({"p": value}) in (True, False)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x" + ")" * 50_000, None),
        ("[" + ":" * 50_000, None),
        ("a:" * 50_000, None),  # once read one level deep, not 50,000
        ("https://e.com" + "." * 50_000, ["e.com"]),
        ("(" * 50_000 + "a@example.com", ["example.com"]),
        ("@" * 50_000, None),
    ],
)
def test_long_hostile_tokens_are_read_in_one_pass(text, expected) -> None:
    assert hosts_in(text) == expected
