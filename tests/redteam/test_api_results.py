"""What an external runtime reports through the decision API.

README, Security model: "Every error message from a connector or a credential rotation passes
one function (agents.connectors.scrub) before it is stored, logged, alerted, mailed, sent to
webhooks or audited". For an API session the runtime runs the connector, and the error it
reports goes into the ActionRequest and the audit trail without passing scrub()."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from agents.models import ActionRequest
from audit.models import AuditEvent
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db

SECRET = "hunter2-Sup3rSecretPassw0rdValue"


def test_a_reported_connector_error_is_scrubbed_before_it_is_stored_and_audited(start) -> None:
    started = start()
    client = bearer(APIClient(), started["token"])
    answer = client.post(
        "/api/v1/authorize",
        {"action": "ticketing.get_ticket", "params": {"ticket_id": "T-2002"}, "tool_use_id": "t1"},
        format="json",
    ).json()
    assert answer["decision"] == "allow", answer
    error = f"connection to postgres://svc:{SECRET}@db.internal/crm failed; password={SECRET}"
    response = client.post(
        f"/api/v1/actions/{answer['action_request_id']}/result", {"outcome": "failed", "error": error}, format="json"
    )
    assert response.status_code == 200, response.content
    stored = ActionRequest.objects.get(pk=answer["action_request_id"]).error
    audited = json.dumps([e.details for e in AuditEvent.objects.filter(kind="action.failed")])
    assert SECRET not in stored, stored
    assert SECRET not in audited, audited
    assert SECRET not in response.content.decode()
