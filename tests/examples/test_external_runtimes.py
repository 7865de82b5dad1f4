"""The external-runtime examples against a live Warden: the Claude Agent SDK hooks (called as
the SDK calls them; the SDK itself needs the network to reach Claude) and an MCP tool server
driven in-process by the official `mcp` client."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connections

from agents.api.auth import agent_key_create
from agents.models import ActionRequest
from governance.models import AgentIdentity

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "examples"))

from claude_agent_sdk_hook import WardenHooks
from mcp_gateway import build_server
from warden_client import WardenClient

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def client(live_server, demo) -> WardenClient:
    warden = WardenClient(live_server.url, agent_key_create(AgentIdentity.objects.get(name="refund-bot")))
    warden.start_session("refund-triage", "Handle T-2002", initiated_by="user:dana")
    return warden


def run_async(coro):
    """asyncio.run in a thread of its own: Playwright's sync API may hold this thread's loop."""
    box = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=120)
    if "error" in box:
        raise box["error"]
    return box["value"]


def approve_when_pending(reviewer_name: str) -> threading.Thread:
    def run() -> None:
        from approvals.services import action_request_decide
        from tests.approvals.conftest import make_user

        try:
            reviewer = make_user(reviewer_name, "reviewer")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ar = ActionRequest.objects.filter(status="awaiting_approval").first()
                if ar is not None:
                    action_request_decide(
                        action_request=ar,
                        reviewer=reviewer,
                        decision="approve",
                        comment="ok",
                        params_hash=ar.params_hash,
                    )
                    return
                time.sleep(0.1)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_claude_agent_sdk_hooks(client) -> None:
    hooks = WardenHooks(client)
    allowed = run_async(
        hooks.pre_tool_use({"tool_name": "get_customer", "tool_input": {"customer_id": "C-1001"}}, "toolu_1", None)
    )
    assert allowed["hookSpecificOutput"]["permissionDecision"] == "allow"
    run_async(hooks.post_tool_use({"tool_name": "get_customer", "tool_response": {"name": "Ada"}}, "toolu_1", None))
    denied = run_async(
        hooks.pre_tool_use(
            {"tool_name": "mcp__crm__crm__delete_customer", "tool_input": {"customer_id": "C-1"}}, "toolu_2", None
        )
    )
    assert denied["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "not in the access map" in denied["hookSpecificOutput"]["permissionDecisionReason"]
    approver = approve_when_pending("bob")
    refund = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "dup"}
    waited = run_async(hooks.pre_tool_use({"tool_name": "issue_refund", "tool_input": refund}, "toolu_3", None))
    approver.join(timeout=30)
    assert waited["hookSpecificOutput"]["permissionDecision"] == "allow"
    statuses = dict(ActionRequest.objects.values_list("tool_use_id", "status"))
    assert statuses == {"toolu_1": "reported", "toolu_2": "denied", "toolu_3": "approved"}


def test_an_mcp_server_behind_the_decision_api(client) -> None:
    from mcp.shared.memory import create_connected_server_and_client_session

    ran = []

    def get_customer(customer_id: str) -> dict:
        ran.append(customer_id)
        return {"id": customer_id, "name": "Ada"}

    def delete_customer(customer_id: str) -> dict:
        ran.append(f"deleted {customer_id}")
        return {"deleted": True}

    server = build_server(
        client,
        {
            "get_customer": ("crm.get_customer", get_customer),
            "delete_customer": ("crm.delete_customer", delete_customer),
        },
    )

    async def exercise() -> tuple:
        async with create_connected_server_and_client_session(server._mcp_server) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            ok = await session.call_tool("get_customer", {"customer_id": "C-1001"})
            refused = await session.call_tool("delete_customer", {"customer_id": "C-1001"})
            return tools, ok, refused

    tools, ok, refused = run_async(exercise())
    assert "customer_id" in tools["get_customer"].inputSchema["properties"]
    assert not ok.isError and "Ada" in ok.content[0].text
    assert refused.isError and "Warden refused crm.delete_customer" in refused.content[0].text
    assert ran == ["C-1001"]  # the refused tool never ran
    assert sorted(ActionRequest.objects.values_list("action", "status")) == [
        ("crm.delete_customer", "denied"),
        ("crm.get_customer", "reported"),
    ]
