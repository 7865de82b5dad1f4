"""One choke point for stored data: whatever route a never-persist value takes (parameters,
a list result, a nested result, a result reported through the API, the stored conversation),
no Warden table holds it in clear."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents import gateway, sessions
from tests.agents.test_context import CANARIES, _warden_tables_text
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db
SSN_A, SSN_B, SSN_C = CANARIES.values()


def _report(token: str, ar_id: str, result) -> None:
    response = bearer(APIClient(), token).post(
        f"/api/v1/actions/{ar_id}/result", {"outcome": "succeeded", "result": result}, format="json"
    )
    assert response.status_code == 200, response.content


def test_a_list_result_reported_through_the_api_is_fingerprinted(start) -> None:
    started = start(workflow="refund-triage")
    token = started["token"]
    allowed = bearer(APIClient(), token).post(
        "/api/v1/authorize",
        {"action": "crm.get_customer", "params": {"customer_id": "C-1001"}, "tool_use_id": "t1"},
        format="json",
    )
    ar_id = allowed.json()["action_request_id"]
    _report(token, ar_id, [{"name": "Ada", "ssn": SSN_A}, {"name": "Bo", "SSN": SSN_B, "nested": {"ssn": SSN_C}}])
    text = _warden_tables_text()
    for ssn in (SSN_A, SSN_B, SSN_C):
        assert ssn not in text


def test_nested_parameters_are_fingerprinted_wherever_they_are_stored(demo) -> None:
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    gateway.authorize(
        token,
        "crm.add_note",
        {"customer_id": "C-1001", "body": "x", "extra": [{"ssn": SSN_A}, {"deep": {"Ssn": SSN_B}}]},
        tool_use_id="t1",
    )
    text = _warden_tables_text()
    assert SSN_A not in text and SSN_B not in text
