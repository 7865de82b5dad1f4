"""A small client for Warden's decision API, for runtimes that run agents outside Warden.

Standard library only, so it drops into any runtime. See claude_agent_sdk_hook.py and
mcp_gateway.py for two ways to put it in front of every tool call.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


class WardenError(Exception):
    """Warden answered with a problem (RFC 9457); `problem` holds it."""

    def __init__(self, status: int, problem: dict[str, Any]):
        errors = problem.get("errors")
        where = f" {errors}" if errors else ""
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title')}{where}")
        self.status, self.problem = status, problem


@dataclass
class Decision:
    decision: str  # allow | allow_notified | pending_approval | deny | session_terminated
    tier: int | None
    action_request_id: str | None
    reason: str

    @property
    def may_run(self) -> bool:
        return self.decision in ("allow", "allow_notified")


class WardenClient:
    def __init__(self, base_url: str, agent_key: str, timeout: float = 35):
        self.base_url, self.agent_key, self.timeout = base_url.rstrip("/"), agent_key, timeout
        self.session_id: str | None = None
        self.token: str | None = None

    def _call(self, method: str, path: str, body: Any = None, token: str | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token or self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                problem = json.loads(exc.read())
            except ValueError:
                problem = {"detail": exc.reason}
            raise WardenError(exc.code, problem) from None

    def start_session(self, workflow: str, input: str = "", initiated_by: str = "") -> str:
        started = self._call(
            "POST",
            "/api/v1/sessions/",
            {"workflow": workflow, "input": input, **({"initiated_by": initiated_by} if initiated_by else {})},
            token=self.agent_key,
        )
        self.session_id, self.token = started["session_id"], started["token"]
        return self.session_id

    def authorize(self, action: str, params: dict[str, Any], tool_use_id: str = "") -> Decision:
        answer = self._call(
            "POST", "/api/v1/authorize", {"action": action, "params": params, "tool_use_id": tool_use_id}
        )
        return Decision(answer["decision"], answer["tier"], answer["action_request_id"], answer["reason"])

    def wait_for_decision(self, action_request_id: str, timeout: float = 600) -> dict[str, Any]:
        """Long-poll until a reviewer decides (or the request expires)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self._call("GET", f"/api/v1/actions/{action_request_id}?wait=20")
            if status["status"] not in ("awaiting_approval",) or time.monotonic() > deadline:
                return status

    def report(self, action_request_id: str, outcome: str, result: Any = None, error: str = "") -> dict[str, Any]:
        return self._call(
            "POST",
            f"/api/v1/actions/{action_request_id}/result",
            {"outcome": outcome, "result": result, "error": error},
        )

    def end(self) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/sessions/{self.session_id}/end")
