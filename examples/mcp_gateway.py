"""An MCP tool server whose every tool call passes Warden's decision API first.

Any MCP client (Claude Desktop, Claude Code, an agent framework) sees ordinary tools; the
server asks Warden before running one, waits for a reviewer on tier 3, refuses what Warden
refuses, and reports each result for the audit trail.

    WARDEN_URL=... WARDEN_AGENT_KEY=wak_... WARDEN_WORKFLOW=refund-triage python examples/mcp_gateway.py
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from typing import Any

from mcp.server.fastmcp import FastMCP
from warden_client import WardenClient


class Refused(Exception):
    pass


def build_server(client: WardenClient, tools: dict[str, tuple[str, Callable[..., Any]]]) -> FastMCP:
    """tools: MCP tool name -> (Warden action, the function that really does it)."""
    server = FastMCP("warden-gateway")

    def governed(name: str, action: str, run: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(run)  # the tool's parameters, for its input schema, are the function's
        async def tool(**params: Any) -> Any:
            decision = await asyncio.to_thread(client.authorize, action, params)
            if decision.decision == "pending_approval":
                status = await asyncio.to_thread(client.wait_for_decision, decision.action_request_id)
                if status["status"] != "approved":
                    raise Refused(f"Warden: not approved ({status['status']})")
            elif not decision.may_run:
                raise Refused(f"Warden refused {action}: {decision.reason}")
            try:
                result = run(**params)
            except Exception as exc:
                await asyncio.to_thread(client.report, decision.action_request_id, "failed", None, str(exc))
                raise
            await asyncio.to_thread(client.report, decision.action_request_id, "succeeded", result)
            return result

        tool.__name__ = name
        return tool

    for name, (action, run) in tools.items():
        server.add_tool(governed(name, action, run), name=name, description=f"{action}, governed by Warden")
    return server


if __name__ == "__main__":
    warden = WardenClient(os.environ["WARDEN_URL"], os.environ["WARDEN_AGENT_KEY"])
    warden.start_session(os.environ.get("WARDEN_WORKFLOW", "refund-triage"))
    build_server(
        warden,
        {
            "get_customer": ("crm.get_customer", lambda customer_id: {"id": customer_id}),
        },
    ).run()
