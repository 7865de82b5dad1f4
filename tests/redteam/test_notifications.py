"""Notifications (README, The reviewer UI: "a handoff emails the reviewers, a security alert
emails the security role ... When WARDEN_WEBHOOK_URLS is set, each also goes to every URL").

A handoff's trigger carries the connector's error text, and error text has newlines (a
PostgreSQL error's `DETAIL:` and `LINE 1:` lines). The trigger goes into the mail's Subject
as is; Django refuses a header with a newline (BadHeaderError), so the notify task fails:
no mail, and the webhooks, sent after the mail in the same task, never go out either."""

from __future__ import annotations

import pytest
from django.core import mail

from agents import sessions
from config.celery import app as celery_app
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_handoff_whose_trigger_has_a_newline_still_emails_the_reviewers(
    demo, eager, django_capture_on_commit_callbacks
) -> None:
    make_user("alice", "reviewer")
    session, _token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    trigger = 'connector error in crm.issue_refund: duplicate key value\nDETAIL:  Key (id)=(R-1) already exists.'
    with django_capture_on_commit_callbacks(execute=True):
        sessions.hand_off(session, trigger=trigger, context={})
    assert [m.to for m in mail.outbox if "needs a person" in m.subject] == [["alice@example.com"]]
