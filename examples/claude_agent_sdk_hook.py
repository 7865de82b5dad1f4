"""Put Warden in front of every tool call of an agent built with the Claude Agent SDK.

The PreToolUse hook asks Warden's decision API whether the call may run: allowed calls run,
tier 3 calls wait (long-poll) for a reviewer, and refused calls are denied with Warden's
reason, which Claude reads. The PostToolUse hook reports what the tool did, for the audit
trail. Tool names map to Warden action types by TOOL_ACTIONS (or `mcp__<server>__<action>`).

    WARDEN_URL=https://warden.example.com WARDEN_AGENT_KEY=wak_... \\
        python examples/claude_agent_sdk_hook.py refund-triage "Handle ticket T-2002"
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from warden_client import Decision, WardenClient

TOOL_ACTIONS = {"get_customer": "crm.get_customer", "issue_refund": "crm.issue_refund"}


def action_for(tool_name: str) -> str:
    if tool_name.startswith("mcp__"):
        return tool_name.split("__", 2)[2].replace("__", ".")
    return TOOL_ACTIONS.get(tool_name, tool_name)


def _deny(reason: str) -> dict[str, Any]:
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": f"Warden: {reason}",
        }
    }


def _allow(reason: str) -> dict[str, Any]:
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "allow",
            "permissionDecisionReason": f"Warden: {reason}",
        }
    }


class WardenHooks:
    def __init__(self, client: WardenClient):
        self.client = client
        self.pending: dict[str, str] = {}  # tool_use_id -> action_request_id

    async def pre_tool_use(self, input_data: dict[str, Any], tool_use_id: str | None, context: Any) -> dict[str, Any]:
        decision: Decision = await asyncio.to_thread(
            self.client.authorize,
            action_for(input_data["tool_name"]),
            input_data.get("tool_input") or {},
            tool_use_id or "",
        )
        if decision.decision == "pending_approval":
            status = await asyncio.to_thread(self.client.wait_for_decision, decision.action_request_id)
            if status["status"] != "approved":
                return _deny(f"not approved ({status['status']}): {status.get('decided_reason') or status['reason']}")
        elif not decision.may_run:
            return _deny(decision.reason)
        if tool_use_id:
            self.pending[tool_use_id] = decision.action_request_id
        return _allow(decision.reason)

    async def post_tool_use(self, input_data: dict[str, Any], tool_use_id: str | None, context: Any) -> dict[str, Any]:
        action_request_id = self.pending.pop(tool_use_id or "", None)
        if action_request_id:
            response = input_data.get("tool_response")
            await asyncio.to_thread(
                self.client.report,
                action_request_id,
                "succeeded",
                response if isinstance(response, (dict, list)) else {"output": str(response)},
            )
        return {}

    def options(self, **kwargs: Any) -> Any:
        from claude_agent_sdk import ClaudeAgentOptions, HookMatcher

        return ClaudeAgentOptions(
            hooks={
                "PreToolUse": [HookMatcher(hooks=[self.pre_tool_use])],
                "PostToolUse": [HookMatcher(hooks=[self.post_tool_use])],
            },
            **kwargs,
        )


async def main(workflow: str, prompt: str) -> None:
    from claude_agent_sdk import query

    client = WardenClient(os.environ["WARDEN_URL"], os.environ["WARDEN_AGENT_KEY"])
    client.start_session(workflow, prompt, initiated_by=os.environ.get("USER", "cli"))
    hooks = WardenHooks(client)
    try:
        async for message in query(prompt=prompt, options=hooks.options()):
            print(message)
    finally:
        client.end()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
