"""A rejection ends in a defined state: a person takes over (the default), the model is told
why and claims nothing (continue), or the session ends (end)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from agents.models import AgentSession, HumanHandoff
from demo_systems.models import Comment, Refund
from governance.models import Workflow
from tests.approvals.conftest import make_user, resume, run_to_pause
from tests.approvals.test_action_request_decide import decide

pytestmark = pytest.mark.django_db


def test_a_new_workflow_hands_a_rejected_session_to_a_person_with_the_reason(demo, model_server) -> None:
    assert Workflow._meta.get_field("on_reject").default == "handoff"
    Workflow.objects.filter(name="refund-triage").update(on_reject="handoff")
    ar = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    decide(ar, make_user("alice", "reviewer"), "reject", "Refund EUR 40 only.")
    session = AgentSession.objects.get(pk=ar.session_id)
    assert session.status == "handed_off"
    handoff = HumanHandoff.objects.get(session=session)
    assert "Refund EUR 40 only." in handoff.trigger and handoff.context["rejection"] == "Refund EUR 40 only."
    assert not Refund.objects.exists()


def test_with_continue_the_model_is_told_and_claims_nothing(demo, model_server) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    decide(ar, make_user("alice", "reviewer"), "reject", "Refund EUR 40 only.")
    session = resume(ar)
    assert session.status == "completed"
    assert "did not refund" in session.final_answer and "Refund EUR 40 only." in session.final_answer
    assert not Comment.objects.filter(body__icontains="refunded").exists()
    assert not Refund.objects.exists()


def test_a_policy_file_says_handoff_by_default(example_state) -> None:
    from governance.policyfile.state import normalize_item

    assert normalize_item("workflows", {"access": [], "tiers": []})["on_reject"] == "handoff"


def test_run_agent_refuses_an_unknown_initiator(demo, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        call_command("run_agent", agent="refund-bot", workflow="refund-triage", input="x", initiator="nobody")
    assert exit_info.value.code == 2
    assert "no Warden account 'nobody'" in capsys.readouterr().err


def test_run_agent_records_the_initiator_as_the_account_it_names(demo, django_capture_on_commit_callbacks) -> None:
    make_user("alice", "reviewer")
    call_command("run_agent", agent="refund-bot", workflow="refund-triage", input="x", initiator="alice")
    assert AgentSession.objects.get().initiated_by == "user:alice"
