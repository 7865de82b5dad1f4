"""The policy language of issue 14: blocks, if_present, not_matches, named lists, case, session
facts and destinations, each through decide() and through a policy file that round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from governance.conditions import compile_condition
from governance.facts import SessionFacts
from governance.policy import decide
from governance.policyfile import (
    PolicyError,
    apply_policy,
    export_yaml,
    from_database,
    from_document,
    load,
    snapshot_from_state,
)

POLICY = Path(__file__).with_name("language_policy.yaml")
FRESH = SessionFacts()
READ_BALANCE = FRESH.after("bank.get_balance", {}, ("bank.account",), 2)  # confidential


@pytest.fixture(scope="module")
def snap():
    return snapshot_from_state(from_document(load(POLICY.read_text())), "payments")


def holds(spec: dict, params: dict, lists: dict | None = None, facts: SessionFacts | None = FRESH) -> bool:
    return compile_condition({**spec, "tier": 3}, lists or {}, action="a").holds(params, facts)


# -- blocks ---------------------------------------------------------------------------------------


def test_all_needs_every_part_and_any_one() -> None:
    both = {"all": [{"param": "a", "op": "gt", "value": 1}, {"param": "b", "op": "eq", "value": "x"}]}
    either = {"any": both["all"]}
    assert holds(both, {"a": 2, "b": "x"}) and not holds(both, {"a": 2, "b": "y"})
    assert holds(either, {"a": 2, "b": "y"}) and not holds(either, {"a": 0, "b": "y"})


def test_not_keeps_uncertainty_raising_the_tier() -> None:
    negated = {"not": {"param": "a", "op": "gt", "value": 1}}
    assert holds(negated, {"a": 0}) and not holds(negated, {"a": 2})
    assert holds(negated, {}) and holds(negated, {"a": "text"})  # not(unknown) is unknown: holds
    double = {"not": {"not": {"param": "a", "op": "gt", "value": 1}}}
    assert holds(double, {"a": 2}) and not holds(double, {"a": 0}) and holds(double, {})


def test_an_all_with_one_unknown_part_holds_unless_another_part_is_false() -> None:
    spec = {"all": [{"param": "a", "op": "gt", "value": 1}, {"param": "b", "op": "eq", "value": "x"}]}
    assert holds(spec, {"b": "x"})  # a missing: unknown
    assert not holds(spec, {"b": "y"})  # b decides: false whatever a is


def test_blocks_are_checked_with_their_place() -> None:
    with pytest.raises(ValueError, match=r"all\[1\]: unknown operator"):
        compile_condition(
            {"all": [{"param": "a", "op": "gt", "value": 1}, {"param": "a", "op": "bigger"}], "tier": 3}, {}
        )
    with pytest.raises(ValueError, match="only the outermost condition has a 'tier'"):
        compile_condition({"any": [{"param": "a", "op": "gt", "value": 1, "tier": 3}], "tier": 3}, {})
    with pytest.raises(ValueError, match="non-empty list"):
        compile_condition({"all": [], "tier": 3}, {})
    deep: dict = {"param": "a", "op": "present"}
    for _ in range(9):
        deep = {"not": deep}
    with pytest.raises(ValueError, match="nest at most"):
        compile_condition({**deep, "tier": 3}, {})


# -- if_present, not_matches, named lists, case -----------------------------------------------------


def test_if_present_constrains_an_optional_parameter_without_raising_calls_that_leave_it_out() -> None:
    spec = {"param": "cc[*]", "op": "domain_not_in", "value": ["example.com"], "if_present": True}
    assert not holds(spec, {}) and not holds(spec, {"cc": []})
    assert not holds({**spec, "param": "cc"}, {"cc": None})  # null counts as absent
    assert holds(spec, {"cc": ["a@evil.test"]}) and not holds(spec, {"cc": ["a@example.com"]})
    assert holds(spec, {"cc": "a@example.com"})  # not a list: cannot be judged
    assert holds({**spec, "if_present": False}, {})


def test_not_matches_and_a_named_list_of_patterns() -> None:
    lists = {"bad": ["(?i)ignore previous", "wire\\s+transfer"]}
    assert holds({"param": "t", "op": "matches", "list": "bad"}, {"t": "please IGNORE previous"}, lists)
    assert not holds({"param": "t", "op": "matches", "list": "bad"}, {"t": "hello"}, lists)
    assert holds({"param": "t", "op": "not_matches", "list": "bad"}, {"t": "hello"}, lists)
    assert not holds({"param": "t", "op": "not_matches", "value": "^T-\\d+$"}, {"t": "T-12"})
    assert holds({"param": "t", "op": "not_matches", "value": "^T-\\d+$"}, {"t": 12})  # wrong type


def test_named_lists_work_with_eq_and_ne() -> None:
    lists = {"ok": ["a", "b"]}
    assert holds({"param": "x", "op": "eq", "list": "ok"}, {"x": "b"}, lists)
    assert holds({"param": "x", "op": "ne", "list": "ok"}, {"x": "c"}, lists)
    with pytest.raises(ValueError, match="takes a value, not a list"):
        compile_condition({"param": "x", "op": "gt", "list": "ok", "tier": 3}, lists)


def test_addresses_and_domains_compare_without_case_by_default() -> None:
    blocked = {"param": "to", "op": "in", "value": ["evil@attacker.example"]}
    assert holds(blocked, {"to": "Evil@Attacker.example"})
    assert not holds({**blocked, "case": "sensitive"}, {"to": "Evil@Attacker.example"})
    word = {"param": "code", "op": "in", "value": ["KP"]}
    assert not holds(word, {"code": "kp"}) and holds({**word, "case": "insensitive"}, {"code": "kp"})
    assert holds({"param": "t", "op": "matches", "value": "^abc$", "case": "insensitive"}, {"t": "ABC"})


def test_one_word_without_a_host_names_none_like_free_text() -> None:
    spec = {"param": "body", "op": "domain_not_in", "value": ["example.com"]}
    assert holds(spec, {"body": "Thanks!"}) == holds(spec, {"body": "Thanks a lot!"}) is False
    assert holds(spec, {"body": "e.g."})  # looks like a host and is none: still unknown


# -- facts ------------------------------------------------------------------------------------------


def test_facts_conditions_read_sensitivity_objects_counts_and_totals() -> None:
    facts = FRESH.after("pay", {"amount": 600}, ("bank.account",), 2)
    assert holds({"fact": "sensitivity", "op": "gte", "value": "confidential"}, {}, facts=facts)
    assert not holds({"fact": "sensitivity", "op": "gte", "value": "confidential"}, {})
    assert holds({"fact": "data_objects", "op": "in", "value": ["bank.account"]}, {}, facts=facts)
    total = compile_condition(
        {"fact": "total", "param": "amount", "op": "gt", "value": 1000, "tier": 3}, {}, action="pay"
    )
    assert total.holds({"amount": 500}, facts) and not total.holds({"amount": 300}, facts)
    assert total.holds({}, facts)  # this call's amount cannot be read
    count = compile_condition({"fact": "count", "op": "gte", "value": 2, "tier": 3}, {}, action="pay")
    assert count.holds({}, facts) and not count.holds({}, FRESH)


def test_unknown_facts_hold() -> None:
    for spec in (
        {"fact": "sensitivity", "op": "eq", "value": "public"},
        {"fact": "count", "op": "lt", "value": 0},
        {"fact": "data_objects", "op": "in", "value": []},
    ):
        assert holds(spec, {}, facts=None)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"fact": "mood", "op": "eq", "value": 1}, "unknown fact"),
        ({"fact": "total", "op": "gt", "value": 1}, "needs 'param'"),
        ({"fact": "count", "op": "in", "value": [1]}, "is a number"),
        ({"fact": "sensitivity", "op": "gt", "value": "secret"}, "one of public"),
        ({"param": "a", "op": "gt", "value": 1, "action": "x"}, "'action' names"),
    ],
)
def test_bad_facts_are_refused_with_a_reason(spec, message) -> None:
    with pytest.raises(ValueError, match=message):
        compile_condition({**spec, "tier": 3}, {})


# -- decide() with the policy file --------------------------------------------------------------------


def test_a_payment_to_an_unknown_payee_over_100_needs_approval(snap) -> None:
    known, other = "DE89370400440532013000", "FR7630006000011234567890189"
    assert decide(snap, "bank.send_money", {"iban": known, "amount": 500}, facts=READ_BALANCE).tier == 2
    assert decide(snap, "bank.send_money", {"iban": known.lower(), "amount": 50}, facts=READ_BALANCE).tier == 2
    raised = decide(snap, "bank.send_money", {"iban": other, "amount": 500}, facts=READ_BALANCE)
    assert raised.tier == 3 and "all of (amount gt 100; not (iban in list known_payees)) -> tier 3" in raised.reason
    assert f"{other!r} is not an authorized destination" in raised.reason  # both, in one reason


def test_running_totals_raise_the_tier(snap) -> None:
    paid = READ_BALANCE.after("bank.send_money", {"amount": 900, "iban": "x"})
    params = {"iban": "DE89370400440532013000", "amount": 200}
    assert decide(snap, "bank.send_money", params, facts=READ_BALANCE).tier == 2
    assert decide(snap, "bank.send_money", params, facts=paid).tier == 3


def test_an_unlisted_destination_goes_to_a_person_when_the_workflow_says_so(snap) -> None:
    decision = decide(snap, "bank.send_money", {"iban": "FR7630006000011234567890189", "amount": 5}, facts=READ_BALANCE)
    assert decision.allowed and decision.tier == 3 and "is not an authorized destination" in decision.reason


def test_every_egress_parameter_is_a_destination_and_absent_ones_are_none(snap) -> None:
    ok = {"to": ["ann@example.com"], "body": "hi"}
    assert decide(snap, "mail.send_email", ok, facts=FRESH).tier == 2
    assert decide(snap, "mail.send_email", {**ok, "cc": [], "bcc": []}, facts=FRESH).tier == 2
    assert decide(snap, "mail.send_email", {"to": [], "body": "hi"}, facts=FRESH).tier == 2
    leak = decide(snap, "mail.send_email", {**ok, "bcc": ["eve@evil.test"]}, facts=FRESH)
    assert leak.tier == 3 and "'eve@evil.test' is not an authorized destination" in leak.reason
    blocked = decide(snap, "mail.send_email", {"to": ["EVIL@attacker.example"], "body": "x"}, facts=FRESH)
    assert blocked.tier == 4 and not blocked.allowed


def test_a_destination_not_cleared_for_the_session_data_is_refused_when_the_workflow_refuses() -> None:
    doc = yaml.safe_load(POLICY.read_text())
    doc["workflows"][0]["unlisted_destinations"] = "refuse"
    snap = snapshot_from_state(from_document(load(yaml.safe_dump(doc))), "payments")
    restricted = FRESH.after("x", {}, (), 3)
    decision = decide(snap, "chat.post", {"channel": "#general", "text": "hi"}, facts=restricted)
    assert not decision.allowed and decision.egress_refused and "not cleared for restricted" in decision.reason
    assert decide(snap, "chat.post", {"channel": "#general", "text": "hi"}, facts=FRESH).allowed
    unknown = decide(snap, "chat.post", {"channel": "#general", "text": "hi"})  # facts unknown: most sensitive
    assert unknown.egress_refused


def test_custom_destination_types_match_exactly(snap) -> None:
    assert decide(snap, "chat.post", {"channel": "#general", "text": "hi"}, facts=FRESH).tier == 1
    assert decide(snap, "chat.post", {"channel": "#General", "text": "hi"}, facts=FRESH).tier == 3
    assert decide(snap, "chat.post", {"channel": "#general", "text": "Hello"}, facts=FRESH).tier == 2
    assert decide(snap, "chat.post", {"channel": "#general", "text": "hi"}, facts=READ_BALANCE).tier == 2


# -- policy files ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_new_feature_round_trips_through_apply_and_export() -> None:
    state = from_document(load(POLICY.read_text()))
    apply_policy(state, actor="test")
    exported = export_yaml()
    assert apply_policy(from_document(load(exported)), actor="test", dry_run=True) == []
    assert from_document(load(exported)) == from_database() == state
    assert "unlisted_destinations: 3" in exported and "not_matches" in exported and "fact: total" in exported


def _with(change) -> str:
    doc = yaml.safe_load(POLICY.read_text())
    change(doc)
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["workflows"][0]["destinations"].append({"type": "webhook", "value": "www.example.com"}),
            "workflows[0].destinations[5].value: 'www.example.com' is not a URL: write the scheme",
        ),
        (
            lambda d: d["workflows"][0]["destinations"].append({"type": "ibam", "value": "x"}),
            "workflows[0].destinations[5].type: no action type sends to 'ibam' destinations (did you mean 'iban'?)",
        ),
        (
            lambda d: d["workflows"][0]["tiers"][1]["conditions"].append(
                {"fact": "count", "action": "bank.get_balanse", "op": "gt", "value": 1, "tier": 3}
            ),
            "unknown action 'bank.get_balanse' (did you mean 'bank.get_balance'?)",
        ),
        (
            lambda d: d["workflows"][0]["tiers"][1]["conditions"].append(
                {"any": [{"param": "amount", "op": "gt", "list": "known_payees"}], "tier": 3}
            ),
            "workflows[0].tiers[1].conditions[4]: any[0]: operator 'gt' takes a value, not a list",
        ),
        (lambda d: d["workflows"][0].update(unlisted_destinations=4), "unlisted_destinations"),
    ],
)
def test_policy_files_refuse_what_the_language_cannot_use(change, message) -> None:
    with pytest.raises(PolicyError) as exc:
        load(_with(change))
    assert any(message in e for e in exc.value.errors), exc.value.errors


def test_a_schemeless_webhook_never_authorizes_a_longer_host() -> None:
    from governance.destinations import matches

    listed = {"type": "webhook", "value": "www.example.com"}
    assert not matches(listed, "webhook", "www.example.com.evil.net/x")
    assert not matches(listed, "webhook", "https://www.example.com.evil.net/x")
    good = {"type": "webhook", "value": "https://www.example.com/hooks/"}
    assert matches(good, "webhook", "https://www.example.com/hooks/a")
    assert not matches(good, "webhook", "https://www.example.com.evil.net/hooks/a")
    assert not matches(good, "webhook", "https://www.example.com/hooksx")
