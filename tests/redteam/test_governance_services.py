"""Governance services as the one path for provisioning rules (README, Security model: "the UI,
policy files, the CLI and periodic tasks call the same governance services: the step-up for
provisioning (a recent MFA sign-in for a person in the browser ...) ... hold on every path";
docs/decisions/0014). Each service checks its actor, so no entry point can skip a rule."""

from __future__ import annotations

import pytest

from governance.actors import Actor
from governance.models import AgentIdentity, Workflow
from governance.services import Refused, agent_workflow_withdraw
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db


def test_withdrawing_a_workflow_checks_the_admin_role_and_the_step_up(demo) -> None:
    """agent_workflow_withdraw is the only identity service that checks neither the role nor
    the step-up: a person signed in without MFA, and without the admin role, changes an
    agent's access through it (and is audited as having done so)."""
    agent = AgentIdentity.objects.get(name="refund-bot")
    workflow = Workflow.objects.get(name="refund-triage")
    reviewer = Actor.for_user(make_user("rita", "reviewer"), {"amr": ["pwd"], "acr": "", "auth_time": 0})
    with pytest.raises(Refused):
        agent_workflow_withdraw(actor=reviewer, agent=agent, workflow=workflow, reason="because I can")
    assert agent.workflows.filter(pk=workflow.pk).exists()
