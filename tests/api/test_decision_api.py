"""The decision API, as an external runtime and a compliance script use it."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

import audit
from agents.api.auth import api_token_create
from agents.models import ActionRequest, AgentSession
from approvals.services import action_request_decide
from audit.chain import verify
from audit.models import AuditEvent
from demo_systems.models import Refund
from tests.api.conftest import bearer
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db
REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}


def authorize(token: str, action: str, params, tool_use_id: str = ""):
    return bearer(APIClient(), token).post(
        "/api/v1/authorize", {"action": action, "params": params, "tool_use_id": tool_use_id}, format="json"
    )


def test_a_runtime_runs_a_session_through_the_api(start) -> None:
    started = start(input="Handle T-2002", initiated_by="user:dana")
    token = started["token"]
    allowed = authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, "t1").json()
    assert (allowed["decision"], allowed["tier"]) == ("allow", 1)
    report = bearer(APIClient(), token).post(
        f"/api/v1/actions/{allowed['action_request_id']}/result",
        {"outcome": "succeeded", "result": {"name": "Ada", "ssn": "123-45-6789"}},
        format="json",
    )
    assert report.status_code == 200 and report.json()["status"] == "reported"
    stored = ActionRequest.objects.get(pk=allowed["action_request_id"]).result
    assert stored["ssn"].startswith("fp:") and "123-45-6789" not in str(AuditEvent.objects.values_list("details"))
    again = bearer(APIClient(), token).post(
        f"/api/v1/actions/{allowed['action_request_id']}/result", {"outcome": "succeeded"}, format="json"
    )
    assert again.status_code == 400 and again["Content-Type"] == "application/problem+json"

    pending = authorize(token, "crm.issue_refund", REFUND, "t2").json()
    assert pending["decision"] == "pending_approval"
    status = bearer(APIClient(), token).get(f"/api/v1/actions/{pending['action_request_id']}").json()
    assert status["status"] == "awaiting_approval"
    ar = ActionRequest.objects.get(pk=pending["action_request_id"])
    action_request_decide(
        action_request=ar,
        reviewer=make_user("bob", "reviewer"),
        decision="approve",
        comment="",
        params_hash=ar.params_hash,
    )
    status = bearer(APIClient(), token).get(f"/api/v1/actions/{ar.pk}", {"wait": 5}).json()
    assert status["status"] == "approved" and not Refund.objects.exists()  # the runtime executes it itself
    bearer(APIClient(), token).post(
        f"/api/v1/actions/{ar.pk}/result", {"outcome": "succeeded", "result": {"ok": 1}}, format="json"
    )
    ended = bearer(APIClient(), token).post(f"/api/v1/sessions/{started['session_id']}/end").json()
    assert ended == {"session_id": started["session_id"], "status": "completed", "termination_verified": True}
    assert authorize(token, "crm.get_customer", {"customer_id": "C-1001"}).status_code == 401
    assert verify().ok


def test_refusals_are_decisions_and_errors_are_problems(start, agent_key) -> None:
    token = start()["token"]
    denied = authorize(token, "crm.delete_customer", {"customer_id": "C-1"}).json()
    assert denied["decision"] == "deny" and denied["tier"] is None and "access map" in denied["reason"]
    refused = bearer(APIClient(), agent_key).post("/api/v1/sessions/", {"workflow": "ticket-triage"}, format="json")
    assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"
    body = refused.json()
    assert body["type"] == "urn:warden:problem:forbidden" and "not assigned" in body["detail"]
    invalid = authorize(token, "", {})
    assert invalid.status_code == 400 and "errors" in invalid.json()
    assert APIClient().post("/api/v1/authorize", {}, format="json").status_code == 401


def test_a_token_of_one_session_cannot_touch_another_sessions_action(start) -> None:
    first, second = start()["token"], start()["token"]
    ar = authorize(first, "crm.get_customer", {"customer_id": "C-1001"}).json()["action_request_id"]
    assert bearer(APIClient(), second).get(f"/api/v1/actions/{ar}").status_code == 404
    result = bearer(APIClient(), second).post(f"/api/v1/actions/{ar}/result", {"outcome": "succeeded"}, format="json")
    assert result.status_code == 404
    assert AuditEvent.objects.filter(kind="api.cross_session_refused").count() == 1


def test_rate_limits_answer_429_with_retry_after(start, monkeypatch, settings, one_rate_window) -> None:
    """Counted in Redis, as in production (WARDEN_CACHE_URL), so every web worker shares them."""
    from rest_framework.throttling import SimpleRateThrottle

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/13"}
    }
    cache.clear()
    monkeypatch.setattr(
        SimpleRateThrottle,
        "THROTTLE_RATES",
        {**SimpleRateThrottle.THROTTLE_RATES, "agent": "100/min", "session": "3/min"},
    )
    token = start()["token"]
    codes = [authorize(token, "crm.get_customer", {"customer_id": "C-1001"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = authorize(token, "crm.get_customer", {"customer_id": "C-1001"})
    # Retry-After: when the window ends, so that the caller waits no longer than it must.
    assert 1 <= int(limited["Retry-After"]) <= one_rate_window - int(time.time()) + 1
    assert limited.json()["type"] == "urn:warden:problem:rate-limited"
    cache.clear()


def test_compliance_reads_the_audit_trail_with_a_personal_token(start, compliance_token) -> None:
    start()
    audit.sequence_now()  # the API lists the log: events that have their seq
    client = bearer(APIClient(), compliance_token)
    page = client.get("/api/v1/audit/events", {"kind": "session.started", "limit": 1}).json()
    assert len(page["events"]) == 1 and page["events"][0]["kind"] == "session.started"
    assert client.get("/api/v1/audit/events", {"since": "soon"}).status_code == 400
    reviewer_token = api_token_create(make_user("rita", "reviewer"), "x")
    assert bearer(APIClient(), reviewer_token).get("/api/v1/audit/events").status_code == 403
    assert bearer(APIClient(), "wpt_forged").get("/api/v1/audit/events").status_code == 401


def test_the_schema_and_docs_are_served(db) -> None:
    schema = APIClient().get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/authorize" in schema.content
    docs = APIClient().get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()


def test_health_readiness_and_metrics(start) -> None:
    client = APIClient()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    token = start()["token"]
    authorize(token, "crm.get_customer", {"customer_id": "C-1001"})
    metrics = client.get("/metrics").content.decode()
    assert 'warden_decisions_total{decision="allow",tier="1"}' in metrics
    assert "warden_audit_append_seconds_count" in metrics and "warden_approval_queue_depth" in metrics
    assert AgentSession.objects.count() == 1
