"""Properties of governance.policy.decide over random workflows (Hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from governance.policy import build_snapshot, decide

OBJECTS = [f"sys.obj{i}" for i in range(4)]
ACTIONS = [f"sys.act{i}" for i in range(5)]
ALL_GRANTS = [(o, m) for o in OBJECTS for m in ("read", "write")]
LISTS = {"allowed": ["a", "b"], "domains": ["example.com"]}

conditions = st.one_of(
    st.builds(
        lambda v, t: {"param": "amount", "op": "gt", "value": v, "tier": t}, st.integers(-5, 5), st.integers(1, 4)
    ),
    st.builds(lambda t: {"param": "who", "op": "not_in", "list": "allowed", "tier": t}, st.integers(1, 4)),
    st.builds(lambda t: {"param": "to[*]", "op": "domain_not_in", "list": "domains", "tier": t}, st.integers(1, 4)),
    st.builds(lambda t: {"param": "flag", "op": "present", "tier": t}, st.integers(1, 4)),
)
actions = st.fixed_dictionaries(
    {
        name: st.fixed_dictionaries(
            {
                "system": st.just("sys"),
                "mode": st.sampled_from(["read", "write"]),
                "data_objects": st.lists(st.sampled_from(OBJECTS), min_size=1, max_size=3, unique=True),
                "params_schema": st.just({"type": "object"}),
            }
        )
        for name in ACTIONS
    }
)
tiers = st.dictionaries(
    st.sampled_from(ACTIONS),
    st.fixed_dictionaries({"tier": st.integers(1, 4), "conditions": st.lists(conditions, max_size=3)}),
)
grants = st.sets(st.sampled_from(ALL_GRANTS))
params = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.one_of(st.integers(-10, 10), st.floats(-10, 10, allow_nan=False), st.text(max_size=3), st.none()),
        "who": st.sampled_from(["a", "b", "c", 1, None]),
        "to": st.lists(st.sampled_from(["x@example.com", "y@evil.test", "bad", 7]), max_size=3),
        "flag": st.booleans(),
    },
)


def snap(acts: dict[str, Any], tier_map: dict[str, Any], granted: set[tuple[str, str]]):
    workflow = {
        "name": "w",
        "access": [{"data_object": o, "mode": m} for o, m in sorted(granted)],
        "tiers": [{"action": a, **spec} for a, spec in tier_map.items()],
    }
    return build_snapshot(workflow, acts, LISTS)


def needed(acts: dict[str, Any], action: str) -> set[tuple[str, str]]:
    return {(o, acts[action]["mode"]) for o in acts[action]["data_objects"]}


@st.composite
def calls(draw: Any) -> tuple[dict[str, Any], dict[str, Any], set[tuple[str, str]], str, dict[str, Any]]:
    """A policy and a call that it assigns a tier to: the action has a tier and its grants.

    Without this, most random policies refuse the call before any tier applies, and a property
    about tiers is never checked (39 and 13 of 300 examples reached the assertions before).
    """
    acts, tier_map, action = draw(actions), draw(tiers), draw(st.sampled_from(ACTIONS))
    if action not in tier_map:
        tier_map[action] = {"tier": draw(st.integers(1, 4)), "conditions": draw(st.lists(conditions, max_size=3))}
    return acts, tier_map, needed(acts, action) | draw(grants), action, draw(params)


@settings(max_examples=300, deadline=None)
@given(calls(), st.sampled_from(ALL_GRANTS))
def test_adding_a_grant_never_lowers_a_tier(call, extra) -> None:
    acts, tier_map, granted, action, p = call
    before = decide(snap(acts, tier_map, granted), action, p)
    after = decide(snap(acts, tier_map, granted | {extra}), action, p)
    assert before.tier is not None, before.reason  # calls() grants what the action needs
    event("reached: tier compared")
    assert after.tier is not None and after.tier >= before.tier
    assert after.allowed == before.allowed


@settings(max_examples=300, deadline=None)
@given(calls(), st.data())
def test_removing_a_grant_never_allows_more(call, data) -> None:
    acts, tier_map, granted, action, p = call
    # Half the time remove a grant the action needs (it must then be refused), else another one.
    removed = data.draw(st.sampled_from(sorted(granted)))
    before = decide(snap(acts, tier_map, granted), action, p)
    after = decide(snap(acts, tier_map, granted - {removed}), action, p)
    if removed in needed(acts, action):
        event("reached: a needed grant removed")
        assert after.tier is None and not after.allowed
    else:
        event("reached: another grant removed")
        assert (after.tier, after.allowed) == (before.tier, before.allowed)
    assert not after.allowed or (before.allowed and after.tier is not None and after.tier >= before.tier)


@settings(max_examples=200, deadline=None)
@given(actions, tiers, grants, st.text(max_size=30).filter(lambda s: s not in ACTIONS), params)
def test_an_unknown_action_is_always_denied(acts, tier_map, granted, action, p) -> None:
    decision = decide(snap(acts, tier_map, set(ALL_GRANTS) | granted), action, p)
    assert not decision.allowed and decision.tier is None


@settings(max_examples=300, deadline=None)
@given(calls(), conditions)
def test_conditions_only_raise_tiers(call, extra_condition) -> None:
    acts, tier_map, _, action, p = call
    everything = set(ALL_GRANTS)
    decision = decide(snap(acts, tier_map, everything), action, p)
    assert decision.tier is not None, decision.reason
    event("reached: tier compared")
    assert decision.tier >= tier_map[action]["tier"]
    more = {**tier_map, action: {**tier_map[action], "conditions": [*tier_map[action]["conditions"], extra_condition]}}
    assert decide(snap(acts, more, everything), action, p).tier >= decision.tier
    assert decision.allowed == (decision.tier < 4)


@settings(max_examples=100, deadline=None)
@given(actions, tiers, st.sampled_from(ACTIONS), params)
def test_no_tier_assignment_means_deny(acts, tier_map, action, p) -> None:
    tier_map.pop(action, None)
    assert not decide(snap(acts, tier_map, set(ALL_GRANTS)), action, p).allowed
