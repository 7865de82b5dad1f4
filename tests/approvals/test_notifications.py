"""Notifications: email to the people concerned, and signed webhooks with retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from approvals.tasks import WebhookFailed, deliver_webhook, sign
from config.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


class Receiver:
    """A loopback webhook receiver that answers with the given statuses in turn."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.received = list(statuses), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%s/hook" % self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()


def test_a_tier_3_request_emails_reviewers_with_a_link(
    demo, model_server, reviewer_alice, eager, django_capture_on_commit_callbacks
) -> None:
    from tests.approvals.conftest import run_to_pause

    with django_capture_on_commit_callbacks(execute=True):
        ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "user:dana")
    approval_mails = [m for m in mail.outbox if "Approval needed" in m.subject]
    assert len(approval_mails) == 1
    assert approval_mails[0].to == ["alice@example.com"]
    assert f"/approvals/{ar.pk}/" in approval_mails[0].body
    notices = [m for m in mail.outbox if "ran crm.add_note" in m.subject]
    assert notices and notices[0].to == ["payments-lead@example.com"]


def test_alerts_email_security(db, security_sam, eager, django_capture_on_commit_callbacks) -> None:
    from agents import sessions

    with django_capture_on_commit_callbacks(execute=True):
        sessions.raise_alert("anomaly", "odd behaviour")
    assert [m.to for m in mail.outbox if "Security alert" in m.subject] == [["sam@example.com"]]


def test_webhooks_are_signed_over_timestamp_and_body(db, settings) -> None:
    settings.WARDEN_WEBHOOK_SECRET = "hook-secret"
    receiver = Receiver([200])
    try:
        assert deliver_webhook(receiver.url, {"kind": "alert.raised", "url": "http://x"}) == 200
    finally:
        receiver.close()
    headers, body = receiver.received[0]
    timestamp = headers["X-Warden-Timestamp"]
    expected = "sha256=" + hmac.new(b"hook-secret", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Warden-Signature"] == expected == sign(body, int(timestamp), "hook-secret")
    assert json.loads(body)["kind"] == "alert.raised"


def test_a_failing_webhook_is_retried_and_a_4xx_is_not(db, settings) -> None:
    settings.WARDEN_WEBHOOK_SECRET = "s"
    receiver = Receiver([503, 404])
    try:
        with pytest.raises(WebhookFailed):
            deliver_webhook.run(receiver.url, {"kind": "x"})  # the task retries on this
        assert deliver_webhook.run(receiver.url, {"kind": "x"}) == 404
    finally:
        receiver.close()
    assert len(receiver.received) == 2
    assert deliver_webhook.autoretry_for == (WebhookFailed,) and deliver_webhook.retry_backoff
    with pytest.raises(WebhookFailed, match="unreachable"):
        deliver_webhook.run("http://127.0.0.1:9/nothing", {"kind": "x"})
