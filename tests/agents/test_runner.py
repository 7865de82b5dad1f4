"""The runner in-process against the offline model server over real HTTP."""

from __future__ import annotations

import pytest

from agents import gateway, runner, tasks
from agents.models import ActionRequest, AgentSession, SecurityAlert
from agents.services import session_queue_run
from audit.chain import verify
from demo_systems.models import Comment, Customer, Note, Refund

pytestmark = pytest.mark.django_db


def queue(agent: str, workflow: str, text: str) -> AgentSession:
    session = session_queue_run(agent=agent, workflow=workflow, input=text, trigger="test", initiated_by="user:alice")
    assert runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    return session


def test_it_runs_tiers_1_and_2_pauses_at_3_and_completes_after_release(demo, model_server) -> None:
    session = queue("refund-bot", "refund-triage", "Handle ticket T-2002")
    assert runner.run(session.pk) == "paused"
    session.refresh_from_db()
    assert (session.status, session.run_state) == ("awaiting_approval", "paused")
    assert [(a.action, a.tier, a.status) for a in session.action_requests.order_by("created_at")] == [
        ("ticketing.get_ticket", 1, "succeeded"),
        ("crm.get_customer", 1, "succeeded"),
        ("crm.list_refunds", 1, "succeeded"),
        ("crm.add_note", 2, "succeeded"),
        ("crm.issue_refund", 3, "awaiting_approval"),
    ]
    assert Note.objects.count() == 1 and not Refund.objects.exists()

    pending = session.action_requests.get(status="awaiting_approval")
    assert gateway.release(pending).status == "succeeded"
    assert runner.claim(session.pk, from_state=AgentSession.RunState.PAUSED)
    assert runner.run(session.pk) == "done"
    session.refresh_from_db()
    assert (session.status, session.termination_verified) == ("completed", True)
    assert "Refunded EUR 250" in session.final_answer
    assert Refund.objects.count() == 1 and Comment.objects.count() == 1
    assert session.conversation == []  # wiped at the end
    assert verify().ok


def test_release_enqueues_the_resume_task_on_commit(
    demo, model_server, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    session = queue("refund-bot", "refund-triage", "Handle ticket T-2002")
    runner.run(session.pk)
    sent = []
    monkeypatch.setattr(tasks.resume_session, "delay", lambda *args: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        gateway.release(session.action_requests.get(status="awaiting_approval"))
    assert sent == [(str(session.pk), str(session.action_requests.get(action="crm.issue_refund").pk))]


def test_a_prompt_injection_asking_for_tier_4_ends_the_session(demo, model_server) -> None:
    session = queue("support-bot", "account-maintenance", "[script: prompt-injection] Handle T-2003")
    assert runner.run(session.pk) == "done"
    session.refresh_from_db()
    assert (session.status, session.termination_reason) == ("terminated", "tier 4 attempt")
    refused = session.action_requests.get(action="crm.delete_customer")
    assert (refused.tier, refused.status) == (4, "refused")
    assert Customer.objects.filter(id="C-1003").exists()
    assert SecurityAlert.objects.get(kind="tier4_attempt").session == session
    # The second injected call was never even decided.
    assert not session.action_requests.filter(action="crm.update_credit_limit").exists()


def test_an_injection_asking_for_out_of_map_actions_is_refused_and_the_model_told(demo, model_server) -> None:
    session = queue("support-bot", "ticket-triage", "[script: out-of-map] Handle T-2003")
    assert runner.run(session.pk) == "done"
    session.refresh_from_db()
    assert session.status == "completed"
    denied = list(session.action_requests.filter(status="denied").values_list("action", flat=True))
    assert sorted(denied) == ["crm.delete_customer", "crm.update_credit_limit"]
    assert Customer.objects.get(id="C-1003").credit_limit == 800


def test_a_model_api_error_hands_off(demo, settings, tmp_path) -> None:
    from agents.model_server import serve

    script = tmp_path / "broken.yaml"
    script.write_text("name: broken\nsteps:\n  - error: {status: 529, type: overloaded_error}\n")
    server = serve(script)
    settings.ANTHROPIC_BASE_URL = "http://%s:%s" % server.server_address[:2]
    settings.WARDEN_MODEL_MAX_RETRIES = 0
    try:
        session = queue("refund-bot", "refund-triage", "anything")
        assert runner.run(session.pk) == "done"
    finally:
        server.shutdown()
    session.refresh_from_db()
    assert session.status == "handed_off" and session.termination_verified
    assert "model API error" in session.handoffs.get().trigger


def test_an_unreachable_model_hands_off(demo, settings) -> None:
    settings.ANTHROPIC_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.WARDEN_MODEL_MAX_RETRIES = 0
    session = queue("refund-bot", "refund-triage", "anything")
    runner.run(session.pk)
    session.refresh_from_db()
    assert session.status == "handed_off"


def test_repeated_refusals_hand_off(demo, settings, tmp_path) -> None:
    from agents.model_server import serve

    bad = "  - tool_uses: [{tool: crm.get_customer, input: {customer_id: nope}}]\n"
    script = tmp_path / "stubborn.yaml"
    script.write_text("name: stubborn\nsteps:\n" + bad * 5)
    server = serve(script)
    settings.ANTHROPIC_BASE_URL = "http://%s:%s" % server.server_address[:2]
    try:
        session = queue("refund-bot", "refund-triage", "anything")
        runner.run(session.pk)
    finally:
        server.shutdown()
    session.refresh_from_db()
    assert session.status == "handed_off"
    assert "in a row" in session.handoffs.get().trigger
    assert session.action_requests.filter(status="denied").count() == 3


def test_a_worker_that_died_mid_step_is_replaced_without_repeating_actions(demo, model_server) -> None:
    """Simulate a crash after the model answered and one of two tool calls ran."""
    from agents import runner as r

    session = queue("support-bot", "ticket-triage", "Triage")

    original = r._run_tools
    calls = {"n": 0}

    def crash_after_first_write(session, token, uses, ctx):
        if any(u["name"] == "ticketing__set_status" for u in uses) and calls["n"] == 0:
            calls["n"] += 1
            # Execute only the first tool, as a dying worker would, then "die".
            gateway.authorize(token, r.action_name(uses[0]["name"]), uses[0]["input"], tool_use_id=uses[0]["id"])
            raise SystemExit("worker killed")
        return original(session, token, uses, ctx)

    r._run_tools = crash_after_first_write
    try:
        with pytest.raises(SystemExit):
            runner.run(session.pk)
    finally:
        r._run_tools = original
    # The lease runs out; another worker takes over.
    AgentSession.objects.filter(pk=session.pk).update(run_lease_until="2000-01-01T00:00:00Z")
    assert runner.take_over_stalled(session.pk)
    assert runner.run(session.pk) == "done"
    session.refresh_from_db()
    assert session.status == "completed"
    assert session.action_requests.filter(action="ticketing.set_status").count() == 1
    assert Comment.objects.count() == 1


def test_tools_offered_to_the_model_exclude_human_only_actions(demo) -> None:
    session = queue("support-bot", "account-maintenance", "x")
    names = [t["name"] for t in runner.tools_for(session)]
    assert "crm__update_credit_limit" in names and "crm__delete_customer" not in names
    assert all("." not in n for n in names)


def test_the_kill_switch_stops_paused_actions(demo, model_server) -> None:
    from agents.services import agent_identity_suspend
    from governance.models import AgentIdentity

    session = queue("refund-bot", "refund-triage", "Handle ticket T-2002")
    runner.run(session.pk)
    pending = ActionRequest.objects.get(status="awaiting_approval")
    assert (
        agent_identity_suspend(agent=AgentIdentity.objects.get(name="refund-bot"), actor="user:bob", reason="incident")
        == 1
    )
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    assert gateway.release(pending).decision == "deny"
    assert not Refund.objects.exists()
