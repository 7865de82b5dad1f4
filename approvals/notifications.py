"""Who hears about what: new tier 3 requests, tier 2 notices, handoffs and security alerts.

Receivers run after commit (the runtime sends its signals from on_commit) and only build
the message; the Celery tasks in approvals.tasks send it, by email and by signed webhook.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from agents import signals
from governance.roles import Role


def _emails_of(role: str) -> list[str]:
    users = get_user_model().objects.filter(groups__name=role, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _link(path: str) -> str:
    return f"{settings.WARDEN_BASE_URL}{path}"


def _one_line(subject: str, limit: int = 200) -> str:
    """A mail header cannot hold a line break (Django refuses it, and the whole message with it),
    and a subject carries text from outside: a connector's error, a reviewer's reason."""
    text = " ".join(subject.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _send(kind: str, subject: str, body: str, url: str, recipients: list[str], object_id: Any) -> None:
    from approvals.tasks import notify

    notify.delay(
        {
            "kind": kind,
            "subject": _one_line(subject),
            "body": body,
            "url": url,
            "recipients": recipients,
            "object_id": str(object_id),
        }
    )


def on_awaiting_approval(action_request: Any, **_: Any) -> None:
    session = action_request.session
    url = _link(reverse("approvals:detail", args=[action_request.pk]))
    _send(
        "action.awaiting_approval",
        f"[Warden] Approval needed: {action_request.action}",
        f"{session.agent.name} ({session.workflow.name}) asks to run {action_request.action}.\n"
        f"Why it needs approval: {action_request.reason}\nReview it: {url}",
        url,
        _emails_of(Role.REVIEWER),
        action_request.pk,
    )


def on_tier2_notice(action_request: Any, **_: Any) -> None:
    session = action_request.session
    owner = session.workflow.owner
    url = _link(reverse("home"))
    _send(
        "action.notified",
        f"[Warden] {session.agent.name} ran {action_request.action}",
        f"Tier 2 notice: {session.agent.name} ran {action_request.action} in {session.workflow.name} "
        f"(session {session.pk}).",
        url,
        [owner] if owner else [],
        action_request.pk,
    )


def on_handoff(handoff: Any, **_: Any) -> None:
    url = _link(reverse("approvals:handoff", args=[handoff.pk]))
    _send(
        "handoff.created",
        f"[Warden] A session needs a person: {handoff.trigger}"[:200],
        f"Session {handoff.session_id} was handed off: {handoff.trigger}\nTake it over: {url}",
        url,
        _emails_of(Role.REVIEWER),
        handoff.pk,
    )


def on_alert(alert: Any, **_: Any) -> None:
    url = _link(reverse("approvals:alerts"))
    _send(
        "alert.raised",
        f"[Warden] Security alert: {alert.summary}"[:200],
        f"{alert.get_kind_display()} ({alert.severity}): {alert.summary}\nSee: {url}",
        url,
        _emails_of(Role.SECURITY),
        alert.pk,
    )


def connect() -> None:
    signals.action_awaiting_approval.connect(on_awaiting_approval, dispatch_uid="approvals-notify-t3")
    signals.action_notified.connect(on_tier2_notice, dispatch_uid="approvals-notify-t2")
    signals.handoff_created.connect(on_handoff, dispatch_uid="approvals-notify-handoff")
    signals.alert_raised.connect(on_alert, dispatch_uid="approvals-notify-alert")
