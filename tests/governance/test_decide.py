"""governance.policy.decide on the example policy, by example."""

from __future__ import annotations

import pytest

from governance.policy import decide
from governance.policyfile import snapshot_from_state


@pytest.fixture
def refunds(example_state):
    return snapshot_from_state(example_state, "refund-triage")


@pytest.fixture
def triage(example_state):
    return snapshot_from_state(example_state, "ticket-triage")


@pytest.fixture
def accounts(example_state):
    return snapshot_from_state(example_state, "account-maintenance")


def test_it_gives_the_assigned_tier_for_a_read(refunds) -> None:
    decision = decide(refunds, "crm.get_customer", {"customer_id": "C-1001"})
    assert (decision.tier, decision.allowed) == (1, True)
    assert decision.grants_used == (("crm.customer", "read"),)


def test_it_raises_a_refund_over_100_to_tier_3(refunds) -> None:
    small = decide(
        refunds, "crm.issue_refund", {"customer_id": "C-1", "amount": 40, "currency": "EUR", "reason": "late"}
    )
    large = decide(
        refunds, "crm.issue_refund", {"customer_id": "C-1", "amount": 400, "currency": "EUR", "reason": "late"}
    )
    assert small.tier == 2
    assert (large.tier, large.allowed, large.base_tier) == (3, True, 2)
    assert "amount gt 100" in large.reason


def test_it_makes_a_high_value_refund_human_only(refunds) -> None:
    decision = decide(
        refunds, "crm.issue_refund", {"customer_id": "C-1", "amount": 9000, "currency": "EUR", "reason": "x"}
    )
    assert (decision.tier, decision.allowed) == (4, False)
    assert "human only" in decision.reason


def test_a_missing_optional_parameter_raises_the_tier() -> None:
    from governance.policy import build_snapshot

    actions = {"pay": {"system": "bank", "mode": "write", "data_objects": ["bank.payment"], "params_schema": {}}}
    snap = build_snapshot(
        {
            "name": "w",
            "access": [{"data_object": "bank.payment", "mode": "write"}],
            "tiers": [
                {
                    "action": "pay",
                    "tier": 2,
                    "conditions": [{"param": "currency", "op": "ne", "value": "EUR", "tier": 3}],
                }
            ],
        },
        actions,
    )
    assert decide(snap, "pay", {"currency": "EUR"}).tier == 2
    missing = decide(snap, "pay", {})
    assert missing.tier == 3 and "currency ne 'EUR'" in missing.reason


def test_it_denies_an_unknown_action(refunds) -> None:
    decision = decide(refunds, "crm.refnd", {})
    assert (decision.tier, decision.allowed) == (None, False)
    assert "unknown action 'crm.refnd'" in decision.reason


def test_it_denies_an_action_outside_the_workflow(refunds) -> None:
    decision = decide(refunds, "crm.delete_customer", {"customer_id": "C-1"})
    assert not decision.allowed and decision.tier is None


def test_it_denies_parameters_that_fail_the_schema_without_echoing_them(refunds) -> None:
    decision = decide(refunds, "crm.get_customer", {"customer_id": "123-45-6789"})
    assert not decision.allowed
    assert "schema" in decision.reason and "123-45-6789" not in decision.reason
    assert not decide(refunds, "crm.get_customer", {"customer_id": "C-1001", "extra": 1}).allowed
    assert not decide(refunds, "crm.get_customer", ["C-1001"]).allowed


def test_it_denies_a_write_without_a_write_grant() -> None:
    from governance.policy import build_snapshot

    actions = {"crm.add_note": {"system": "crm", "mode": "write", "data_objects": ["crm.note"], "params_schema": {}}}
    snap = build_snapshot(
        {
            "name": "w",
            "access": [{"data_object": "crm.note", "mode": "read"}],
            "tiers": [{"action": "crm.add_note", "tier": 1}],
        },
        actions,
    )
    decision = decide(snap, "crm.add_note", {})
    assert not decision.allowed
    assert "no grant for write on crm.note" in decision.reason


def test_it_keeps_human_only_actions_human_only(accounts) -> None:
    decision = decide(accounts, "crm.delete_customer", {"customer_id": "C-1"})
    assert (decision.tier, decision.allowed) == (4, False)


def test_it_carries_the_quorum(accounts) -> None:
    assert decide(accounts, "crm.update_credit_limit", {"customer_id": "C-1", "credit_limit": 10}).quorum == 2


@pytest.mark.parametrize(
    "recipients, tier",
    [
        (["ann@example.com"], 2),
        (["ann@support.example.com", "bob@example.com"], 2),
        (["ann@example.com", "eve@evil.test"], 3),
        (["ann@EXAMPLE.com"], 2),
        (["ann@example.com.evil.test"], 3),
        (["ann@exаmple.com"], 3),  # Cyrillic 'а'
        (["not-an-address"], 2),  # one word names no host; the destination check refuses it
    ],
)
def test_email_outside_the_company_needs_approval(triage, recipients, tier) -> None:
    params = {"recipients": recipients, "subject": "Your ticket", "body": "Thanks, we fixed it."}
    assert decide(triage, "mail.send_email", params).tier == tier


@pytest.mark.parametrize(
    "body, tier",
    [
        ("See https://docs.example.com/refunds for details.", 2),
        ("No links at all.", 2),
        ("Click https://evil.test/login now", 3),
        ("Visit www.evil.test or https://example.com", 3),
        ("Write to help@evil.test please", 3),
    ],
)
def test_a_message_linking_outside_the_allowlist_needs_approval(triage, body, tier) -> None:
    params = {"recipients": ["ann@example.com"], "subject": "Hi", "body": body}
    assert decide(triage, "mail.send_email", params).tier == tier


def test_decide_reads_a_workflow_from_the_database(applied_policy) -> None:
    from governance.models import Workflow

    decision = decide(
        Workflow.objects.get(name="refund-triage"),
        "crm.issue_refund",
        {"customer_id": "C-1", "amount": 250, "reason": "damaged", "currency": "EUR"},
    )
    assert decision.tier == 3
