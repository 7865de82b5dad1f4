"""Who may see and decide what. Views, services and templates all ask here."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from agents.models import ActionRequest, AgentSession
from governance.actors import identities_of
from governance.models import Tier
from governance.roles import Capability, can


def is_initiator(user: Any, session: AgentSession) -> bool:
    """Separation of duties: the initiator of a session (under any of their names) cannot approve it."""
    return session.initiated_by.lower() in identities_of(user)


def can_review(user: Any) -> bool:
    return can(user, Capability.REVIEW)


def can_decide(user: Any, action_request: ActionRequest) -> bool:
    return can_review(user) and not is_initiator(user, action_request.session)


def actions_visible_to(user: Any) -> QuerySet[ActionRequest]:
    if not can_review(user):
        return ActionRequest.objects.none()
    return ActionRequest.objects.filter(tier=Tier.APPROVE)


def can_handle_handoffs(user: Any) -> bool:
    return can(user, Capability.HANDLE_HANDOFFS)


def can_see_alerts(user: Any) -> bool:
    return can(user, Capability.SEE_ALERTS)
