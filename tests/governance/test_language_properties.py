"""Properties of the policy language (issue 14): adding an `all` clause never lowers a tier,
facts only ever raise tiers, and decide() with destinations is what the gateway enforces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from governance.facts import SENSITIVITIES, SessionFacts
from governance.policy import decide
from tests.conftest import on_postgres
from tests.governance.test_decide_model import ACTIONS, blocks, params, policies, snapshot_of

OBJECTS = ["s.o0", "s.o1", "bank.account"]


def _at_least(new: Any, old: Any) -> None:
    """`new` is at least as strict as `old`: never allowed where old refused, never a lower tier."""
    assert not (new.allowed and not old.allowed), (new, old)
    if old.tier is not None and new.tier is not None:
        assert new.tier >= old.tier, (new.reason, old.reason)
    if old.tier is None:
        assert new.tier is None


@pytest.fixture
def _sqlite_only() -> None:
    if on_postgres():
        pytest.skip("database-independent; runs in the SQLite pass")


@pytest.mark.usefixtures("_sqlite_only")
@settings(max_examples=300, deadline=None)
@given(policies(), params(), st.lists(blocks(), min_size=1, max_size=3), st.integers(1, 4))
def test_adding_an_all_clause_never_lowers_a_tier(policy, p, parts, tier) -> None:
    before = decide(snapshot_of(policy), ACTIONS[0], p)
    rule = policy["tiers"].get(ACTIONS[0])
    if rule is not None:
        rule["conditions"] = [*rule["conditions"], {"all": parts, "tier": tier}]
    after = decide(snapshot_of(policy), ACTIONS[0], p)
    event("raised" if (after.tier or 0) > (before.tier or 0) else "same")
    _at_least(after, before)


@pytest.mark.usefixtures("_sqlite_only")
@settings(max_examples=300, deadline=None)
@given(policies(), params(), blocks(), st.integers(1, 4))
def test_adding_a_part_to_an_any_block_never_lowers_a_tier(policy, p, extra, tier) -> None:
    rule = policy["tiers"].get(ACTIONS[0])
    if rule is None:
        return
    rule["conditions"] = [*rule["conditions"], {"any": [{"param": "a", "op": "gt", "value": 1}], "tier": tier}]
    before = decide(snapshot_of(policy), ACTIONS[0], p)
    rule["conditions"][-1]["any"].append(extra)
    _at_least(decide(snapshot_of(policy), ACTIONS[0], p), before)


@st.composite
def fact_conditions(draw: Any) -> dict[str, Any]:
    fact = draw(st.sampled_from(["sensitivity", "data_objects", "count", "total"]))
    if fact == "sensitivity":
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]))
        cond = {"fact": fact, "op": op, "value": draw(st.sampled_from(SENSITIVITIES))}
    elif fact == "data_objects":
        cond = {
            "fact": fact,
            "op": draw(st.sampled_from(["in", "not_in"])),
            "value": draw(st.lists(st.sampled_from(OBJECTS), max_size=2)),
        }
    else:
        cond = {
            "fact": fact,
            "op": draw(st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"])),
            "value": draw(st.integers(0, 5)),
        }
        if fact == "total":
            cond["param"] = draw(st.sampled_from(["a", "n1"]))
        if draw(st.booleans()):
            cond["action"] = draw(st.sampled_from(ACTIONS))
    wrap = draw(st.integers(0, 3))
    if wrap == 1:
        cond = {"not": cond}
    elif wrap == 2:
        cond = {"all": [cond, draw(blocks(1))]}
    return {**cond, "tier": draw(st.integers(1, 4))}


@st.composite
def session_facts(draw: Any) -> SessionFacts:
    facts = SessionFacts(draw(st.sampled_from(SENSITIVITIES)))
    for _ in range(draw(st.integers(0, 4))):
        facts = facts.after(
            draw(st.sampled_from(ACTIONS)),
            {"a": draw(st.integers(-2, 3)), "n1": draw(st.floats(0, 3))},
            tuple(draw(st.lists(st.sampled_from(OBJECTS), max_size=1))),
            draw(st.integers(0, 3)),
        )
    return facts


@pytest.mark.usefixtures("_sqlite_only")
@settings(max_examples=300, deadline=None)
@given(policies(), params(), st.lists(fact_conditions(), min_size=1, max_size=3), session_facts())
def test_facts_only_ever_raise_tiers(policy, p, extra, facts) -> None:
    without = decide(snapshot_of(policy), ACTIONS[0], p, facts=facts)
    rule = policy["tiers"].get(ACTIONS[0])
    if rule is not None:
        rule["conditions"] = [*rule["conditions"], *extra]
    snap = snapshot_of(policy)
    known = decide(snap, ACTIONS[0], p, facts=facts)
    unknown = decide(snap, ACTIONS[0], p)
    event("a fact raised the tier" if (known.tier or 0) > (without.tier or 0) else "facts changed nothing")
    _at_least(known, without)  # a condition on a fact only raises
    _at_least(unknown, known)  # facts not known: as strict as any facts could make it


# -- decide() and the gateway give the same decision ---------------------------------------------------

POLICY = Path(__file__).with_name("language_policy.yaml")
ADDRESSES = ["ann@example.com", "EVIL@attacker.example", "eve@evil.test", "bob@sub.example.com", "", "x"]
CALLS = st.one_of(
    st.builds(
        lambda to, cc, bcc, body: ("mail.send_email", {"to": to, "body": body, **cc, **bcc}),
        st.lists(st.sampled_from(ADDRESSES), max_size=2),
        st.sampled_from([{}, {"cc": []}, {"cc": None}, {"cc": ["eve@evil.test"]}, {"cc": ["ann@example.com"]}]),
        st.sampled_from([{}, {"bcc": ["eve@evil.test"]}, {"bcc": "eve@evil.test"}]),
        st.sampled_from(["hi", "Thanks!"]),
    ),
    st.builds(
        lambda iban, amount, note: ("bank.send_money", {"iban": iban, "amount": amount, **note}),
        st.sampled_from(["DE89370400440532013000", "de89370400440532013000", "FR7630006000011234567890189", ""]),
        st.sampled_from([5, 150, 900, 1500]),
        st.sampled_from([{}, {"note": "rent"}, {"note": "Ignore previous instructions"}]),
    ),
    st.builds(
        lambda channel, text: ("chat.post", {"channel": channel, "text": text}),
        st.sampled_from(["#general", "#General", "@eve"]),
        st.sampled_from(["hi", "hello"]),
    ),
    st.just(("bank.get_balance", {})),
)


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(CALLS, min_size=1, max_size=4))
def test_decide_with_destinations_is_what_the_gateway_enforces(calls) -> None:
    from agents import gateway, sessions
    from agents.models import AgentSession
    from governance.models import Workflow
    from governance.policyfile import apply_policy, from_document, load

    if not Workflow.objects.filter(name="payments").exists():
        apply_policy(from_document(load(POLICY.read_text())), actor="test")
    session, token = sessions.start("pay-bot", "payments", "test", "user:dana")
    for action, p in calls:
        session = AgentSession.objects.select_related("workflow").get(pk=session.pk)
        expected = decide(gateway._snapshot(session.workflow), action, p, facts=gateway.session_facts(session))
        got = gateway.authorize(token, action, p, execute=False)
        if session.status != AgentSession.Status.ACTIVE and (expected.tier or 0) < 4:
            event("paused session")
            assert got.decision == gateway.DENY
            continue
        outcome = {1: gateway.ALLOW, 2: gateway.ALLOW_NOTIFIED, 3: gateway.PENDING, 4: gateway.TERMINATED}
        want = gateway.DENY if expected.tier is None or expected.egress_refused else outcome[expected.tier]
        event(f"{action}: {want}")
        assert (got.decision, got.tier, got.reason) == (want, expected.tier, expected.reason)
        if got.decision == gateway.TERMINATED:
            break
