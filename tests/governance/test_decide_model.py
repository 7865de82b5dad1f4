"""decide() against a reference model of README's rules, on random policies and random calls.

The model (tests/governance/reference_model.py) is written from README. decide() may be
stricter than the model, never looser: the test fails on any call where decide() allows what
the model refuses, or gives a lower tier.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from governance.policy import build_snapshot, decide
from tests.conftest import on_postgres
from tests.governance import reference_model as model


@pytest.fixture(autouse=True)
def _once_per_suite() -> None:
    # decide() does not touch the database: the SQLite pass of bin/test is enough.
    if on_postgres():
        pytest.skip("database-independent; runs in the SQLite pass")


OBJECTS = ["s.o0", "s.o1", "s.o2"]
ACTIONS = ["s.a0", "s.a1"]
PATHS = ["a", "b", "a.x", "l[*]", "l[*].x", "code", "n1"]
LISTS = {
    "nums": [1, 2.5],
    "words": ["root", "KP"],
    "mixed": ["a", 1, True],
    "domains": ["example.com", "bücher.de"],
    "outside": ["evil.test", "127.0.0.1"],
    "patterns": ["^\\d+$", "(?i)ROOT", "b$"],
}
PATTERNS = ["^\\d+$", "wire\\s+transfer", "^a", "(?i)ROOT", "b$", "^$"]

# Values of every JSON type, and a few that JSON cannot hold. Pools keep generation cheap, so
# that 10,000 examples run in CI; Hypothesis still picks, combines and shrinks them.
NUMBERS = [0, 1, -1, 2, 3, 0.0, -0.0, 1.0, 2.5, -2.5, 100, 2**53 + 1, 1e300]
STRINGS = [*sorted(model.HOSTS), "123", "١٢٣", "123\n", "KP", "root", "a", "ab", "wire  transfer", "\ud800", "", "  "]
SCALARS = [None, True, False, *NUMBERS, *STRINGS]
NESTED = [[], [1], [True], [False, 0], ["a", 1], [[1]], [None], {}, {"x": 1}, {"x": True}, {"y": "a"}]
NESTED += [{"x": {"x": 1}}, [{"x": 1}, {"y": 2}], [{"x": "KP"}], [{"x": "x@example.com"}], {"x": [1.0]}]
NON_FINITE = [math.nan, math.inf, -math.inf, [math.nan], {"x": math.inf}]

# One level of choice per value: deep one_of trees cost more draws than the calls they make.
numbers = st.one_of(st.sampled_from(NUMBERS), st.integers(-3, 3), st.floats(-5, 5, allow_nan=False))
words = st.text(alphabet="ab 1", max_size=4)
finite_json = st.one_of(st.sampled_from(SCALARS + NESTED), st.integers(-3, 3), words)
any_json = st.one_of(
    st.sampled_from(SCALARS + NESTED + NON_FINITE),
    st.integers(-3, 3),
    words,
    st.lists(st.sampled_from(SCALARS + NESTED), max_size=3),
    st.builds(lambda v: {"x": v}, st.sampled_from(SCALARS + NESTED + NON_FINITE)),
)
elements = st.lists(any_json, max_size=3)
# Hypothesis favours the ends of a range, so "rare" is a value in the middle of one.
rare = st.integers(0, 9)  # keys that schemas check come now and then, so most calls pass the schema


@st.composite
def params(draw: Any) -> dict[str, Any]:
    p = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "a": any_json,
                "b": any_json,
                "l": st.one_of(elements, any_json),
            },
        )
    )
    if draw(rare) in (3, 4):
        p["code"] = draw(st.one_of(st.sampled_from(["123", "١٢٣", "123\n", "0"]), any_json))
    if draw(rare) == 5:
        p["n1"] = draw(any_json)
    if draw(rare) == 6:
        p["n\ud800"] = 1
    return p


OPS = ["gt", "gte", "lt", "lte", "eq", "ne", "in", "not_in", "matches", "not_matches", "domain_in", "domain_not_in"]
OPS += ["present"]
LIST_MEMBERS = [None, True, False, *NUMBERS, "a", "KP", "root", "123", "x@example.com", "\ud800"]


@st.composite
def comparisons(draw: Any) -> dict[str, Any]:
    """One comparison, without a tier (blocks give theirs)."""
    op = draw(st.sampled_from(OPS))
    cond: dict[str, Any] = {"param": draw(st.sampled_from(PATHS)), "op": op}
    if op in ("gt", "gte", "lt", "lte"):
        cond["value"] = draw(numbers)
    elif op in ("eq", "ne"):
        if draw(rare) == 3:
            cond["list"] = draw(st.sampled_from(["nums", "words", "mixed"]))
        else:
            cond["value"] = draw(finite_json)
    elif op in ("in", "not_in"):
        if draw(st.booleans()):
            cond["list"] = draw(st.sampled_from(["nums", "words", "mixed"]))
        else:
            cond["value"] = draw(st.lists(st.sampled_from(LIST_MEMBERS), max_size=3))
    elif op in ("matches", "not_matches"):
        if draw(rare) < 3:
            cond["list"] = "patterns"
        else:
            cond["value"] = draw(st.sampled_from(PATTERNS))
    elif op in ("domain_in", "domain_not_in"):
        if draw(st.booleans()):
            cond["list"] = draw(st.sampled_from(["domains", "outside"]))
        else:
            cond["value"] = draw(st.lists(st.sampled_from(sorted(model.DOMAINS)), max_size=3))
    if op in ("in", "not_in", "matches", "not_matches") and draw(rare) < 2:
        cond["case"] = draw(st.sampled_from(["sensitive", "insensitive"]))
    if op != "present" and draw(rare) < 3:
        cond["if_present"] = True
    return cond


def blocks(depth: int = 0) -> Any:
    """A comparison, or an all/any/not block of them, nested at most two deep."""
    if depth >= 2:
        return comparisons()
    part = st.deferred(lambda: blocks(depth + 1))
    return st.one_of(
        comparisons(),
        comparisons(),
        st.builds(lambda p: {"not": p}, part),
        st.builds(lambda ps: {"all": ps}, st.lists(part, min_size=1, max_size=3)),
        st.builds(lambda ps: {"any": ps}, st.lists(part, min_size=1, max_size=3)),
    )


@st.composite
def conditions(draw: Any) -> dict[str, Any]:
    return {**draw(blocks()), "tier": draw(st.integers(1, 4))}


GRANTS = [(o, m) for o in OBJECTS for m in ("read", "write")]


@st.composite
def policies(draw: Any) -> dict[str, Any]:
    """The action under test (ACTIONS[0]) and one other; calls go mostly to the first."""
    actions = {
        name: {
            "mode": draw(st.sampled_from(["read", "write"])),
            # An action without data objects is rare, as in real policies; it is always denied.
            "data_objects": draw(
                st.lists(st.sampled_from(OBJECTS), min_size=int(draw(st.integers(0, 19)) != 7), max_size=2)
            ),
            "schema": draw(st.sampled_from(sorted(model.SCHEMAS))),
        }
        for name in ACTIONS
    }
    needed = {(o, a["mode"]) for a in actions.values() for o in a["data_objects"]}
    # Most calls should reach the tier: grant what is needed, then drop a grant now and then.
    grants = needed | set(draw(st.lists(st.sampled_from(GRANTS), max_size=2)))
    if draw(st.integers(0, 9)) == 7:
        grants.discard(draw(st.sampled_from(GRANTS)))
    tiers = {
        # The other action is called one time in ten: one condition is enough there.
        name: {"tier": draw(st.integers(1, 4)), "conditions": draw(st.lists(conditions(), max_size=4 if i == 0 else 1))}
        for i, name in enumerate(ACTIONS)
        if draw(st.integers(0, 19)) != 7
    }
    return {"actions": actions, "grants": grants, "tiers": tiers, "lists": LISTS}


def snapshot_of(policy: dict[str, Any]):
    workflow = {
        "name": "w",
        "access": [{"data_object": o, "mode": m} for o, m in sorted(policy["grants"])],
        "tiers": [{"action": a, **spec} for a, spec in policy["tiers"].items()],
    }
    actions = {
        name: {
            "system": "s",
            "mode": a["mode"],
            "data_objects": a["data_objects"],
            "params_schema": model.SCHEMAS[a["schema"]],
        }
        for name, a in policy["actions"].items()
    }
    return build_snapshot(workflow, actions, policy["lists"])


@settings(max_examples=10_000, deadline=None)
@given(policies(), st.sampled_from([ACTIONS[0]] * 8 + [ACTIONS[1], "s.unknown"]), params())
def test_decide_is_never_looser_than_readme(policy, action, p) -> None:
    got = decide(snapshot_of(policy), action, p)
    want = model.decide(policy, action, p)
    event("model gives a tier" if want.tier is not None else "model refuses")
    if got.tier != want.tier or got.allowed != want.allowed:
        event("decide() is stricter than the model")
    assert not (got.allowed and not want.allowed), (got, want)
    if got.tier is not None and want.tier is not None:
        assert got.tier >= want.tier, (got.reason, want)
    if got.tier is not None:
        assert want.tier is not None or not got.allowed, (got.reason, want)
