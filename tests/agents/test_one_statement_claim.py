"""An allowed tier 1 call on PostgreSQL is claimed, opened and audited in one statement (decision
0015, second round). Each test tries to break one promise of that statement: the claim holds
only for a live session on the facts the call was decided with, the event is written exactly
when the row is, a failure writes nothing, and a reused tool_use id is still a replay.

These run outside a test transaction (transaction=True): inside one, the gateway takes its
transactional path, which the rest of the suite covers."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from agents import gateway, sessions
from agents.models import ActionRequest, AgentSession
from audit.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

READ = {"customer_id": "C-1001"}


def _statements(call: Any) -> tuple[Any, list[str]]:
    seen: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        result = call()
    return result, seen


def _events(session: AgentSession, kind: str) -> int:
    return AuditEvent.objects.filter(session=str(session.pk), kind=kind).count()


def test_a_tier1_call_is_the_token_read_and_one_statement(start_session) -> None:
    session, token = start_session()
    gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t0", execute=False)  # the caches, warm
    session.refresh_from_db()
    result, seen = _statements(
        lambda: gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t1", execute=False)
    )
    assert (result.decision, result.tier, result.status) == ("allow", 1, "allowed")
    assert len(seen) == 2 and seen[1].startswith("WITH claimed AS (UPDATE"), seen
    ar = ActionRequest.objects.get(pk=result.action_request_id)
    assert ar.status == "allowed" and ar.tool_use_id == "t1"
    assert _events(session, "action.allowed") == 2
    fresh = AgentSession.objects.get(pk=session.pk)
    assert fresh.facts_seq == session.facts_seq + 1
    assert fresh.facts["counts"].get("crm.get_customer") == 2, fresh.facts


def test_an_executed_call_writes_its_claim_and_its_result(start_session) -> None:
    session, token = start_session()
    result = gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t1")
    assert result.executed
    assert _events(session, "action.executing") == 1 and _events(session, "action.executed") == 1


def test_a_session_that_ended_after_the_token_check_allows_nothing(start_session) -> None:
    """The API passes the session its authentication verified; the session ends before the
    decision is written. The claim matches no row, so nothing is allowed, and the refusal is audited."""
    session, token = start_session()
    stale, _ = sessions.verify_token(token)
    sessions.end(session, reason="ended meanwhile")
    result = gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t1", execute=False, verified_session=stale)
    assert result.decision == "deny" and "terminated" in result.reason
    assert not ActionRequest.objects.filter(session=session, status__in=["allowed", "executing"]).exists()
    assert _events(session, "action.allowed") == 0 and _events(session, "action.denied") == 1


def test_facts_moved_by_another_call_are_decided_again(start_session) -> None:
    """Another call counted itself in the facts since this one read them: the claim misses, the
    call is decided on the current facts and counted after them (no count is lost)."""
    session, token = start_session()
    stale, _ = sessions.verify_token(token)
    assert gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t1", execute=False).decision == "allow"
    result = gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t2", execute=False, verified_session=stale)
    assert result.decision == "allow"
    fresh = AgentSession.objects.get(pk=session.pk)
    assert fresh.facts["counts"].get("crm.get_customer") == 2 and fresh.facts_seq == session.facts_seq + 2
    assert _events(session, "action.allowed") == 2


def test_a_reused_tool_use_id_is_a_replay_and_writes_no_second_row(start_session) -> None:
    session, token = start_session()
    first = gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t1", execute=False)
    again = gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t1", execute=False)
    assert again.action_request_id == first.action_request_id
    assert ActionRequest.objects.filter(session=session).count() == 1
    assert _events(session, "action.replayed") == 1 and _events(session, "action.allowed") == 1
    other = gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1002"}, tool_use_id="t1", execute=False)
    assert other.decision == "deny" and _events(session, "action.replay_mismatch") == 1
    assert AgentSession.objects.get(pk=session.pk).facts["counts"].get("crm.get_customer") == 1


def test_an_event_that_cannot_be_written_leaves_no_action_and_no_claim(start_session, monkeypatch) -> None:
    """No audit record, no action: PostgreSQL refuses an event inserted with a seq (only the
    sequencer numbers events), so the statement fails whole."""
    import audit.chain

    session, token = start_session()
    original = audit.chain.insert_from

    def with_seq(source: str) -> str:
        return (
            original(source)
            .replace("legacy_prev_hash, legacy_hmac)", "legacy_prev_hash, legacy_hmac, seq)")
            .replace("'', '' FROM", "'', '', 1 FROM")
        )

    monkeypatch.setattr(audit.chain, "insert_from", with_seq)
    with pytest.raises(Exception):  # noqa: B017 - whatever PostgreSQL raises, nothing may be written
        gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t1", execute=False)
    monkeypatch.setattr(audit.chain, "insert_from", original)
    assert not ActionRequest.objects.filter(session=session).exists()
    assert AgentSession.objects.get(pk=session.pk).facts_seq == session.facts_seq
    assert _events(session, "action.allowed") == 0


def _prepared_on_this_connection() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_token_read_and_the_claim_are_prepared_statements(start_session) -> None:
    """Decision 0021: planned once per connection, and still in the query log as written."""
    session, token = start_session()
    connection.close()  # a connection of its own: nothing prepared yet
    gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t0", execute=False)
    prepared = _prepared_on_this_connection()
    assert any("agents_sessiontoken" in s for s in prepared), prepared
    assert any(s.startswith("WITH claimed AS (UPDATE") for s in prepared), prepared
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as log:
        result = gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t1", execute=False)
    assert result.decision == "allow"
    logged = [q["sql"] for q in log.captured_queries]
    assert len(logged) == 2 and "agents_sessiontoken" in logged[0] and logged[1].startswith("WITH claimed"), logged


def test_prepared_statements_can_be_turned_off(start_session, settings) -> None:
    """WARDEN_DB_PREPARED_STATEMENTS=0, for a pooler that does not keep them: the same calls,
    nothing prepared."""
    settings.WARDEN_DB_PREPARED_STATEMENTS = False
    session, token = start_session()
    connection.close()
    result = gateway.authorize(token, "crm.get_customer", READ, tool_use_id="t0", execute=False)
    assert (result.decision, result.status) == ("allow", "allowed")
    assert _prepared_on_this_connection() == []
