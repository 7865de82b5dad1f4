"""The kill switch and revocations (README, Security model: "reasons for deprovisioning and
revocations ... hold on every path"; Operating: "`agents.services.session_revoke` ends one")."""

from __future__ import annotations

import pytest

from agents import sessions
from agents.services import session_revoke
from audit.models import AuditEvent
from governance.services import Refused

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("reason", ["", "   "])
def test_revoking_a_session_needs_a_reason(demo, reason) -> None:
    """agent_identity_suspend refuses a blank reason; session_revoke ends the session with
    `revoked: ` and nothing else on record."""
    session, _token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    with pytest.raises(Refused):
        session_revoke(session=session, actor="cli:ops", reason=reason)
    session.refresh_from_db()
    assert session.is_live


def test_a_revocation_reason_is_recorded_whole(demo) -> None:
    """The reason is cut to 64 characters with its `revoked: ` prefix (the column's length):
    the person's reason is lost from the trail, unlike agent_identity_suspend's."""
    session, _token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    reason = "incident 4711: the agent mailed a customer list to an outside address, see ticket SEC-88"
    session_revoke(session=session, actor="cli:ops", reason=reason)
    recorded = " ".join(
        str(e.details) for e in AuditEvent.objects.filter(session=session.audit_label) if e.kind.startswith("session.")
    )
    assert reason in recorded, recorded
