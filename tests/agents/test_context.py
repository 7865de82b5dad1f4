from __future__ import annotations

import json
import logging

import pytest
from django.apps import apps
from django.db import connection

from agents import context, runner
from agents.context import ContextPolicy, Rule, filter_result, redact, summarize
from agents.models import AgentSession
from agents.services import session_queue_run

pytestmark = pytest.mark.django_db

POLICY = ContextPolicy(
    fields={
        "crm.customer": {
            "name": "pii.name",
            "email": "pii.email",
            "ssn": "pii.ssn",
            "credit_limit": "finance.credit_limit",
            "note": "text.unruled",
        }
    },
    rules={
        "pii.name": Rule("full"),
        "pii.email": Rule("redacted"),
        "pii.ssn": Rule("never", "step", False),
        "finance.credit_limit": Rule("summarized", "step"),
    },
)
RECORD = {
    "id": "C-1",
    "name": "Ada",
    "email": "ada@example.net",
    "ssn": "123-45-6789",
    "credit_limit": 5000,
    "note": "call 555",
}


def test_each_handling() -> None:
    view = filter_result({"data_object": "crm.customer", "data": RECORD}, POLICY)["data"]
    assert view == {
        "id": "C-1",
        "name": "Ada",
        "email": "a***@example.net",
        "credit_limit": "<number>",
        "note": "[redacted]",
    }


def test_lists_of_records_and_untyped_results() -> None:
    view = filter_result({"data_object": "crm.customer", "data": [RECORD, RECORD]}, POLICY)
    assert all("ssn" not in r for r in view["data"])
    assert filter_result({"secret": "x"}, POLICY) == {"data": {"secret": "<text>"}}


def test_a_never_persist_value_shown_in_full_is_only_a_fingerprint() -> None:
    policy = ContextPolicy(fields=POLICY.fields, rules={**POLICY.rules, "pii.ssn": Rule("full", "session", False)})
    view = filter_result({"data_object": "crm.customer", "data": RECORD}, policy)["data"]
    assert view["ssn"].startswith("fp:") and "6789" not in view["ssn"]


@pytest.mark.parametrize(
    "value, masked",
    [
        ("123-45-6789", "***-**-6789"),
        ("4111 1111 1111 1111", "****1111"),
        ("bob@corp.example", "b***@corp.example"),
        ("SSN 123-45-6789 on file", "SSN ***-**-6789 on file"),
        ("plain", "[redacted]"),
        (42, "[redacted]"),
    ],
)
def test_redaction(value, masked) -> None:
    assert redact(value) == masked


def test_summaries_keep_the_shape() -> None:
    assert summarize({"a": [1, "x", True, None]}) == {"a": ["<number>", "<text>", "<boolean>", None]}


def test_step_paths_and_clearing() -> None:
    view = filter_result({"data_object": "crm.customer", "data": [RECORD]}, POLICY)
    paths = context.step_paths(view, POLICY)
    assert paths == [["data", 0, "credit_limit"]]
    cleared = context.clear_paths(view, paths)
    assert cleared["data"][0]["credit_limit"] == context.CLEARED


def test_clear_after_step_leaves_the_stored_conversation_when_the_next_step_begins(demo, model_server) -> None:
    session = session_queue_run(
        agent="refund-bot", workflow="refund-triage", input="T-2002", trigger="test", initiated_by="user:alice"
    )
    runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    runner.run(session.pk)  # pauses at the refund
    session.refresh_from_db()
    results = [
        json.loads(b["content"])
        for m in session.conversation
        if m["role"] == "user" and isinstance(m["content"], list)
        for b in m["content"]
    ]
    customers = [r for r in results if r.get("data_object") == "crm.customer"]
    assert customers and customers[0]["data"]["credit_limit"] == context.CLEARED  # shown in step 3, cleared in 4
    assert customers[0]["data"]["name"] == "Grace Hopper"  # clear: session, still there


CANARIES = {"C-1001": "123-45-6789", "C-1002": "234-56-7890", "C-1003": "345-67-8901"}


def _warden_tables_text() -> str:
    """Every row of every table except the demo systems' own (they are the source systems)."""
    chunks = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            if model._meta.app_label == "demo_systems":
                continue
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
            chunks.append(repr(cursor.fetchall()))
    return "\n".join(chunks)


def test_never_persist_canaries_reach_no_table_and_no_log(demo, model_server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for agent, workflow, text in [
        ("refund-bot", "refund-triage", "T-2002"),
        ("support-bot", "account-maintenance", "[script: prompt-injection] x"),
        ("support-bot", "ticket-triage", "triage"),
    ]:
        session = session_queue_run(agent=agent, workflow=workflow, input=text, trigger="test", initiated_by="u")
        runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
        runner.run(session.pk)
    # A search by SSN, with the SSN as a parameter: refused by the schema, and never stored.
    from agents import gateway, sessions

    _, token = sessions.start("refund-bot", "refund-triage", "test", "u")
    gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001", "ssn": CANARIES["C-1001"]})
    text = _warden_tables_text()
    logs = caplog.text
    for ssn in CANARIES.values():
        assert ssn not in text, f"{ssn} found in a Warden table"
        assert ssn not in logs
        assert ssn.replace("-", "") not in text
