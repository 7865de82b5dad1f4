"""Hostile JSON at the decision API, fuzzed with Hypothesis: every body gets a decision or a
4xx problem, never a 500, and every tier 4 attempt ends its session, even when its parameters
cannot be stored as given (strings with NUL or lone surrogates, non-finite or huge numbers,
deep nesting, duplicate keys)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from agents.api.auth import agent_key_create
from agents.models import AgentSession, SecurityAlert
from governance.models import AgentIdentity
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db

# Raw JSON fragments that json.dumps would never write: they go into the body as text.
HOSTILE_SCALARS = [
    '"\\ud800"',  # a lone surrogate
    '"a\\u0000b"',  # NUL
    '"\\u001b[31m"',  # a control character
    "1e400",  # beyond float: parses as infinity
    "-1e400",
    "9007199254740993",  # beyond the safe integer range
    "123456789012345678901234567890",
    '"\\udfff\\ud800"',  # surrogates in the wrong order
    '"ｅｖｉｌ．ｅｘａｍｐｌｅ"',  # full-width dots and letters
    "NaN",
    "Infinity",
]

fragment = st.recursive(
    st.sampled_from(HOSTILE_SCALARS) | st.just('"ok"') | st.integers(-10, 10).map(str),
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]")
        | st.lists(st.tuples(st.sampled_from(['"a"', '"a"', '"amount"', '"\\ud800"']), inner), max_size=3).map(
            lambda kvs: "{" + ",".join(f"{k}:{v}" for k, v in kvs) + "}"
        )
    ),
    max_leaves=6,
)

CALLS = {
    1: ("crm.get_customer", '{"customer_id": %s}'),
    3: ("crm.issue_refund", '{"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": %s}'),
    4: ("crm.issue_refund", '{"customer_id": "C-1002", "amount": 9999, "currency": "EUR", "reason": %s}'),
}


def _start(key: str) -> tuple[str, str]:
    response = bearer(APIClient(), key).post("/api/v1/sessions/", {"workflow": "refund-triage"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["session_id"], response.json()["token"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tier=st.sampled_from([1, 3, 4]), value=fragment, tool_use_id=st.sampled_from(['"t1"', '"\\ud800"', '"a\\u0000"'])
)
def test_hostile_json_gets_a_decision_or_a_4xx_and_tier_4_always_ends_the_session(
    demo, tier: int, value: str, tool_use_id: str
) -> None:
    cache.clear()
    with transaction.atomic():
        key = agent_key_create(AgentIdentity.objects.get(name="refund-bot"))
        session_id, token = _start(key)
        action, template = CALLS[tier]
        body = '{"action": "%s", "params": %s, "tool_use_id": %s}' % (action, template % value, tool_use_id)
        response = bearer(APIClient(), token).generic("POST", "/api/v1/authorize", body.encode(), "application/json")
        assert response.status_code < 500, (body, response.content)
        # The order of checks is fixed: a call that fails its schema is refused before its tier
        # is known; a call decided at tier 4 ends its session, whatever else it holds.
        if response.status_code == 200 and response.json()["tier"] == 4:
            assert response.json()["decision"] == "session_terminated", body
            session = AgentSession.objects.get(pk=session_id)
            assert session.status == "terminated"
            assert SecurityAlert.objects.filter(session=session, kind="tier4_attempt").exists()
        transaction.set_rollback(True)


@pytest.mark.parametrize(
    "params",
    [
        '{"customer_id": "C-1002", "amount": 9999, "currency": "EUR", "reason": "\\ud800"}',
        '{"customer_id": "C-1002", "amount": 9999, "currency": "EUR", "reason": "a\\u0000b"}',
        '{"customer_id": "C-1002", "amount": 123456789012345678901234567890, "currency": "EUR", "reason": "x"}',
        '{"customer_id": "C-1002", "amount": 9007199254740993, "currency": "EUR", "reason": "x"}',
    ],
)
def test_a_tier_4_attempt_with_unstorable_parameters_still_ends_the_session(demo, params) -> None:
    key = agent_key_create(AgentIdentity.objects.get(name="refund-bot"))
    session_id, token = _start(key)
    body = '{"action": "crm.issue_refund", "params": %s, "tool_use_id": "t1"}' % params
    response = bearer(APIClient(), token).generic("POST", "/api/v1/authorize", body.encode(), "application/json")
    assert response.status_code == 200, response.content
    assert response.json()["decision"] == "session_terminated"
    session = AgentSession.objects.get(pk=session_id)
    assert session.status == "terminated"
    assert SecurityAlert.objects.filter(session=session, kind="tier4_attempt").exists()


def test_a_number_that_is_not_finite_is_refused_as_invalid_json(demo) -> None:
    """1e400 is valid JSON syntax but no finite number: refused with a 4xx before any decision."""
    key = agent_key_create(AgentIdentity.objects.get(name="refund-bot"))
    session_id, token = _start(key)
    body = '{"action": "crm.issue_refund", "params": {"customer_id": "C-1002", "amount": 1e400}, "tool_use_id": "t1"}'
    response = bearer(APIClient(), token).generic("POST", "/api/v1/authorize", body.encode(), "application/json")
    assert response.status_code == 400 and response.json()["errors"]["params"]
    assert AgentSession.objects.get(pk=session_id).status == "active"
