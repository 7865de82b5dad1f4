"""Notifications (README, The reviewer UI: "a handoff emails the reviewers ... When
WARDEN_WEBHOOK_URLS is set, each also goes to every URL"; a rejection "ends as the workflow's
`on_reject` says: `handoff` (the default: a person takes the session over, with the reviewer's
reason)").

The reviewer's reason is typed in a textarea, so it often has line breaks. It becomes the
handoff's trigger, which goes into the mail's Subject as is; Django refuses a header with a
newline (BadHeaderError), so the notify task fails: no mail to the reviewers, and the
webhooks, sent after the mail in the same task, never go out either."""

from __future__ import annotations

import pytest
from django.core import mail

from agents import sessions
from approvals.services import action_request_decide
from config.celery import app as celery_app
from tests.approvals.conftest import make_user, run_to_pause

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_rejection_reason_with_a_line_break_still_emails_the_reviewers_the_handoff(
    demo, model_server, eager, django_capture_on_commit_callbacks
) -> None:
    from governance.models import Workflow

    Workflow.objects.filter(name="refund-triage").update(on_reject="handoff")  # the default; the demo continues
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    ar = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    with django_capture_on_commit_callbacks(execute=True):
        action_request_decide(
            action_request=ar,
            reviewer=alice,
            decision="reject",
            comment="Wrong amount.\nThe customer asked for EUR 25, not 250.",
            params_hash=ar.params_hash,
        )
    handoff_mails = [m for m in mail.outbox if "needs a person" in m.subject]
    assert handoff_mails and bob.email in handoff_mails[0].to, [m.subject for m in mail.outbox]


def test_a_handoff_whose_trigger_has_a_newline_still_emails_the_reviewers(
    demo, eager, django_capture_on_commit_callbacks
) -> None:
    make_user("alice", "reviewer")
    session, _token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    trigger = "connector error in crm.issue_refund: duplicate key value\nDETAIL:  Key (id)=(R-1) already exists."
    with django_capture_on_commit_callbacks(execute=True):
        sessions.hand_off(session, trigger=trigger, context={})
    assert [m.to for m in mail.outbox if "needs a person" in m.subject] == [["alice@example.com"]]
