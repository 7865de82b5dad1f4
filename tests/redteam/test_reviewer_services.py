"""The reviewers' services as the one place for their rules (README, Architecture: views are
thin; "One path per rule"; docs/decisions/0014). action_request_decide checks the reviewer
role itself; handoff_claim, handoff_resolve and alert_update leave the role to the views, so
any other caller (a task, a command, a future API) lets anyone close a handoff or an alert."""

from __future__ import annotations

import pytest

from agents import sessions
from agents.models import HumanHandoff, SecurityAlert
from approvals.services import DecisionRefused, alert_update, handoff_claim, handoff_resolve
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db


def test_only_a_reviewer_resolves_a_handoff(demo) -> None:
    session, _token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    handoff = sessions.hand_off(session, trigger="test", context={})
    outsider = make_user("mallory")
    with pytest.raises(DecisionRefused):
        handoff_claim(handoff=handoff, responder=outsider)
    with pytest.raises(DecisionRefused):
        handoff_resolve(handoff=handoff, responder=outsider, resolution="nothing to see here")
    assert HumanHandoff.objects.get(pk=handoff.pk).status == HumanHandoff.Status.OPEN


def test_only_security_closes_an_alert(demo) -> None:
    alert = sessions.raise_alert(SecurityAlert.Kind.TIER4_ATTEMPT, "test", severity="high")
    with pytest.raises(DecisionRefused):
        alert_update(alert=alert, actor=make_user("mallory", "reviewer"), status="resolved", note="nothing to see here")
    assert SecurityAlert.objects.get(pk=alert.pk).status == SecurityAlert.Status.OPEN
