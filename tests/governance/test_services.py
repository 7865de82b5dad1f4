"""Governance changes have one path: governance.services. Each test tries a promise from a
path that used to skip it (Django admin, a policy file, the author of a change, a failing
audit write), and the grep test keeps status writes inside the state machine and the services."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

import audit
from agents import gateway, sessions
from audit.models import AuditEvent
from governance import services
from governance.actors import Actor
from governance.models import AccessReview, AgentIdentity, ContextRule, TierAssignment, ValueList, Workflow
from governance.policyfile import from_database
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent


def stepped_up(user) -> Actor:
    return Actor.for_user(user, {"amr": ["pwd", "mfa"], "acr": "", "auth_time": time.time()})


def superuser_client() -> Client:
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-1")
    client = Client()
    client.force_login(admin)
    return client


@pytest.mark.parametrize(
    "url, data",
    [
        ("/admin/governance/contextrule/{rule}/change/", {"data_type": "pii.ssn", "handling": "full", "clear": "step"}),
        ("/admin/governance/valuelist/{values}/change/", {"name": "company_domains", "values": '["evil.example"]'}),
        ("/admin/governance/workflow/{workflow}/change/", {"name": "refund-triage", "max_session_seconds": 99999}),
        ("/admin/auth/group/add/", {"name": "admin"}),
        ("/admin/governance/agentidentity/{agent}/delete/", {"post": "yes"}),
    ],
)
def test_django_admin_cannot_change_governance_state(demo, url, data) -> None:
    client = superuser_client()
    ids = {
        "rule": ContextRule.objects.get(data_type="pii.ssn").pk,
        "values": ValueList.objects.get(name="company_domains").pk,
        "workflow": Workflow.objects.get(name="refund-triage").pk,
        "agent": AgentIdentity.objects.get(name="refund-bot").pk,
    }
    before = AuditEvent.objects.count()
    state = from_database()
    response = client.post(url.format(**ids), data)
    assert response.status_code in (403, 404)
    assert from_database() == state
    assert AuditEvent.objects.count() == before


def test_the_admin_pages_still_show_the_registry(demo) -> None:
    client = superuser_client()
    assert client.get("/admin/governance/workflow/").status_code == 200
    rule = ContextRule.objects.get(data_type="pii.ssn")
    assert client.get(f"/admin/governance/contextrule/{rule.pk}/change/").status_code == 200


def test_deprovisioning_through_a_policy_file_ends_the_agents_sessions(demo) -> None:
    session, _token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    state = from_database()
    del state["agents"]["refund-bot"]
    services.policy_apply(actor=Actor.cli("ops"), desired=state, allow_delete=True)
    session.refresh_from_db()
    assert (session.status, session.termination_verified) == ("terminated", True)
    assert AgentIdentity.objects.get(name="refund-bot").status == "deprovisioned"
    event = AuditEvent.objects.get(kind="provisioning.agent_deprovisioned")
    assert event.actor == "cli:ops" and event.details["sessions_ended"] == 1


def test_suspending_through_a_policy_file_ends_sessions_and_removing_a_workflow_ends_its_sessions(demo) -> None:
    triage, _ = sessions.start("support-bot", "ticket-triage", "test", "user:dana")
    maintenance, _ = sessions.start("support-bot", "account-maintenance", "test", "user:dana")
    state = from_database()
    state["agents"]["support-bot"]["workflows"] = ["account-maintenance"]
    services.policy_apply(actor=Actor.cli("ops"), desired=state)
    triage.refresh_from_db()
    maintenance.refresh_from_db()
    assert triage.status == "terminated" and maintenance.status == "active"
    state["agents"]["support-bot"]["status"] = "suspended"
    services.policy_apply(actor=Actor.cli("ops"), desired=state)
    maintenance.refresh_from_db()
    assert maintenance.status == "terminated"


def test_a_policy_file_cannot_reactivate_a_deprovisioned_agent(demo) -> None:
    services.agent_identity_deprovision(
        actor=Actor.cli("ops"), agent=AgentIdentity.objects.get(name="refund-bot"), reason="retired"
    )
    state = from_database()
    state["agents"]["refund-bot"]["status"] = "active"
    with pytest.raises(services.Refused, match="cannot be reactivated"):
        services.policy_apply(actor=Actor.cli("ops"), desired=state)
    assert AgentIdentity.objects.get(name="refund-bot").status == "deprovisioned"


def test_provisioning_in_the_browser_needs_a_step_up_in_the_service_itself(demo) -> None:
    dave = make_user("dave", "admin")
    no_mfa = Actor.for_user(dave, {"amr": ["pwd"], "auth_time": time.time()})
    agent = AgentIdentity.objects.get(name="refund-bot")
    with pytest.raises(services.Refused, match="step-up"):
        services.agent_identity_suspend(actor=no_mfa, agent=agent, reason="incident")
    with pytest.raises(services.Refused, match="step-up"):
        services.policy_apply(actor=no_mfa, desired=from_database())
    workflow = Workflow.objects.get(name="refund-triage")
    with pytest.raises(services.Refused, match="step-up"):
        services.workflow_update(
            actor=no_mfa,
            name="refund-triage",
            expected_version=workflow.version,
            access=[],
            tiers=[],
            max_session_seconds=60,
        )
    assert AgentIdentity.objects.get(name="refund-bot").status == "active"
    outsider = stepped_up(make_user("mallory"))
    with pytest.raises(services.Refused, match="role"):
        services.agent_identity_suspend(actor=outsider, agent=agent, reason="incident")


def test_deprovisioning_and_revoking_need_a_reason(demo) -> None:
    agent = AgentIdentity.objects.get(name="refund-bot")
    with pytest.raises(services.Refused, match="reason"):
        services.agent_identity_deprovision(actor=Actor.cli("ops"), agent=agent, reason=" ")
    with pytest.raises(services.Refused, match="reason"):
        services.agent_workflow_withdraw(
            actor=Actor.cli("ops"), agent=agent, workflow=Workflow.objects.get(name="refund-triage"), reason=""
        )


def test_the_author_of_a_workflow_change_cannot_confirm_its_access_review(demo) -> None:
    dave = make_user("dave", "admin", "compliance")
    workflow = Workflow.objects.get(name="refund-triage")
    state = from_database()
    spec = state["workflows"]["refund-triage"]
    services.workflow_update(
        actor=stepped_up(dave),
        name="refund-triage",
        expected_version=workflow.version,
        access=[a for a in spec["access"] if a["data_object"] != "crm.note"],
        tiers=[t for t in spec["tiers"] if t["action"] != "crm.add_note"],
        max_session_seconds=spec["max_session_seconds"],
    )
    review = AccessReview.objects.get(agent__name="refund-bot", workflow=workflow)
    with pytest.raises(services.Refused, match="separation of duties"):
        services.access_review_decide(actor=stepped_up(dave), review=review, decision="confirm")
    carol = make_user("carol", "compliance")
    assert services.access_review_decide(actor=stepped_up(carol), review=review, decision="confirm").status == (
        "confirmed"
    )


def test_no_audit_record_no_status_change(demo, monkeypatch) -> None:
    session, _token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    agent = AgentIdentity.objects.get(name="refund-bot")

    def failing(kind, *args, **kwargs):
        if kind.startswith("provisioning."):
            raise RuntimeError("audit store unavailable")
        return original(kind, *args, **kwargs)

    original = audit.record
    monkeypatch.setattr(audit, "record", failing)
    with pytest.raises(RuntimeError):
        services.agent_identity_suspend(actor=Actor.cli("ops"), agent=agent, reason="incident")
    monkeypatch.setattr(audit, "record", original)
    assert AgentIdentity.objects.get(name="refund-bot").status == "active"
    session.refresh_from_db()
    assert session.status == "active"


def test_tier_changes_reach_the_gateway_only_through_a_new_version(demo) -> None:
    """A policy applied through the service bumps the version, so the gateway's snapshot follows."""
    _session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    refund = {"customer_id": "C-1002", "amount": 50, "currency": "EUR", "reason": "x"}
    assert gateway.authorize(token, "crm.issue_refund", refund, tool_use_id="a").tier == 2
    state = from_database()
    for tier in state["workflows"]["refund-triage"]["tiers"]:
        if tier["action"] == "crm.issue_refund":
            tier["tier"] = 3
    services.policy_apply(actor=Actor.cli("ops"), desired=state)
    assert TierAssignment.objects.get(workflow__name="refund-triage", action_type__name="crm.issue_refund").tier == 3
    assert gateway.authorize(token, "crm.issue_refund", refund, tool_use_id="b").tier == 3


# Where status may be written. Everything else must call one of these.
STATUS_WRITERS = {
    "agents/lifecycle.py",  # ActionRequest and AgentSession
    "governance/services/identities.py",  # AgentIdentity
    "governance/services/reviews.py",  # AccessReview, CampaignItem
    "governance/policyfile/apply.py",  # creates an agent with the status its file gives
    "approvals/services.py",  # HumanHandoff, SecurityAlert (the reviewers' work)
    "audit/tasks.py",  # VerificationRun
    "approvals/ciba.py",  # CibaRequest: the out-of-band approval's own request (its decision goes through approvals/services.py)
    "agents/connectors/demo.py",  # the demo helpdesk's own tickets
}
STATUS_WRITE = re.compile(r"\.update\([^)]*\bstatus\s*=|\.status\s*=[^=]|objects\.create\([^)]*\bstatus\s*=")


def test_status_is_written_only_by_the_state_machine_and_the_services() -> None:
    offenders = []
    for app in ("agents", "approvals", "governance", "audit", "config"):
        for path in (ROOT / app).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative in STATUS_WRITERS:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if STATUS_WRITE.search(line):
                    offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


def test_views_ask_for_capabilities_not_role_names() -> None:
    """One authorization module: views and API permissions call governance.roles.can()."""
    offenders = []
    for relative in (
        "approvals/views.py",
        "console/views.py",
        "console/provisioning_views.py",
        "agents/api/views.py",
        "web/views.py",
        "web/context_processors.py",
    ):
        for number, line in enumerate((ROOT / relative).read_text().splitlines(), 1):
            if re.search(r"\bRole\.|has_role\(|roles_of\(.*&|name__in=\(\"|\(\"(compliance|security|admin)\",", line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []
