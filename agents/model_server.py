"""The offline model server: a real HTTP server that speaks enough of the Messages API for
the `anthropic` SDK, and plays a scripted sequence of tool calls, then a final answer.

It is stateless: the reply to a request is chosen by how many assistant turns the request's
conversation already holds, and tool_use ids are derived from the conversation, so a runner
that crashed and asks again gets the same answer with the same ids.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

_SCRIPT_MARKER = re.compile(r"\[script:\s*([A-Za-z0-9_.\-]+)\s*\]")
_WORKFLOW_LINE = re.compile(r"^Workflow:\s*(\S+)", re.MULTILINE)
_INSTRUCTION = re.compile(r"call\s+([A-Za-z][A-Za-z0-9_.]*)\s+with\s+", re.IGNORECASE)


class ScriptError(Exception):
    pass


STEP_KEYS = frozenset({"say", "tool_uses", "obey_injection", "final", "delay", "error", "on_error"})


@dataclass(frozen=True)
class Script:
    name: str
    workflow: str
    steps: tuple[dict[str, Any], ...]

    @classmethod
    def load(cls, path: Path) -> Script:
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ScriptError(f"{path}: cannot read script: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
            raise ScriptError(f"{path}: a script is a mapping with a 'steps' list")
        for i, step in enumerate(doc["steps"]):
            if not isinstance(step, dict) or not set(step) <= STEP_KEYS:
                raise ScriptError(f"{path}: steps[{i}] must use only {', '.join(sorted(STEP_KEYS))}")
            branch = step.get("on_error")
            if branch is not None and (not isinstance(branch, dict) or not set(branch) <= STEP_KEYS - {"on_error"}):
                raise ScriptError(f"{path}: steps[{i}].on_error is a step (say, tool_uses, final, ...)")
        return cls(name=doc.get("name", path.stem), workflow=doc.get("workflow", ""), steps=tuple(doc["steps"]))


class ScriptBook:
    """One script, or a folder of them chosen per conversation."""

    def __init__(self, path: str | Path):
        path = Path(path)
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        if not files:
            raise ScriptError(f"{path}: no scripts found")
        self.scripts = {s.name: s for s in (Script.load(f) for f in files)}

    def choose(self, system: str, first_user_text: str) -> Script:
        marker = _SCRIPT_MARKER.search(first_user_text)
        if marker:
            if marker.group(1) not in self.scripts:
                raise ScriptError(f"no script named {marker.group(1)!r}")
            return self.scripts[marker.group(1)]
        if len(self.scripts) == 1:
            return next(iter(self.scripts.values()))
        workflow = _WORKFLOW_LINE.search(system or "")
        if workflow:
            name = workflow.group(1)
            if name in self.scripts:
                return self.scripts[name]
            for script in self.scripts.values():
                if script.workflow == name:
                    return script
        raise ScriptError("cannot tell which script to play: add [script: NAME] to the first message")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _text_of(content: Any) -> str:
    """What a model would read: text blocks, and the strings inside JSON tool results."""
    if isinstance(content, str):
        try:
            return "\n".join(_strings(json.loads(content)))
        except ValueError:
            return content
    parts = []
    for block in content or []:
        if isinstance(block, dict):
            if block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                parts.append(_text_of(block.get("content")))
    return "\n".join(parts)


def _last_tool_error(messages: list[dict[str, Any]]) -> str | None:
    """The text of the first error tool_result in the last user message, or None."""
    last = messages[-1] if messages else {}
    if last.get("role") != "user" or not isinstance(last.get("content"), list):
        return None
    for block in last["content"]:
        if isinstance(block, dict) and block.get("type") == "tool_result" and block.get("is_error"):
            return _text_of([{"type": "tool_result", "content": block.get("content")}])[:500]
    return None


def injected_calls(text: str) -> list[tuple[str, Any]]:
    """Instructions of the form `call NAME with {json}` inside a tool result."""
    calls, decoder = [], json.JSONDecoder()
    for match in _INSTRUCTION.finditer(text):
        try:
            value, _ = decoder.raw_decode(text, match.end())
        except ValueError:
            continue
        calls.append((match.group(1), value))
    return calls


def reply(book: ScriptBook, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    """(status, response body, delay in seconds) for one POST /v1/messages."""
    messages = body["messages"]
    first = _text_of(messages[0].get("content")) if messages else ""
    script = book.choose(str(body.get("system") or ""), first)
    index = sum(1 for m in messages if m.get("role") == "assistant")
    step: dict[str, Any] = script.steps[index] if index < len(script.steps) else {"final": "Done."}
    error_text = _last_tool_error(messages)
    if "on_error" in step and error_text is not None:
        # A branch on a refused or failed tool call: the script reacts as a model would,
        # and never claims an action that did not happen.
        step = {
            key: value.replace("{error}", error_text) if isinstance(value, str) else value
            for key, value in dict(step["on_error"]).items()
        }
    delay = float(step.get("delay", 0))
    if "error" in step:
        error = step["error"]
        return (
            int(error.get("status", 500)),
            {
                "type": "error",
                "error": {"type": error.get("type", "api_error"), "message": error.get("message", "scripted failure")},
            },
            delay,
        )
    seed = hashlib.sha256(json.dumps([body.get("system"), first], sort_keys=True).encode()).hexdigest()
    content: list[dict[str, Any]] = []
    if step.get("say"):
        content.append({"type": "text", "text": str(step["say"])})
    uses = [(u["tool"], u.get("input", {})) for u in step.get("tool_uses", [])]
    if step.get("obey_injection"):
        last_user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        uses += injected_calls(_text_of(last_user.get("content")))
    for i, (tool, tool_input) in enumerate(uses):
        tool_id = "toolu_" + hashlib.sha256(f"{seed}:{index}:{i}".encode()).hexdigest()[:24]
        content.append({"type": "tool_use", "id": tool_id, "name": tool.replace(".", "__"), "input": tool_input})
    if not uses:
        content.append({"type": "text", "text": str(step.get("final", "Done."))})
    return (
        200,
        {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "offline"),
            "content": content,
            "stop_reason": "tool_use" if uses else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": len(json.dumps(messages)) // 4, "output_tokens": len(json.dumps(content)) // 4},
        },
        delay,
    )


def _problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: must be a positive integer"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "messages: must be a non-empty list of objects"
    if messages[0].get("role") != "user":
        return "messages: the first message must use the user role"
    return None


class Handler(BaseHTTPRequestHandler):
    server_version = "WardenModelServer/1"
    book: ScriptBook

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests carry conversation data: never log them

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:20]}")
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a killed worker, a timeout): nothing to answer

    def _error(self, status: int, kind: str, message: str) -> None:
        self._send(status, {"type": "error", "error": {"type": kind, "message": message}})

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"status": "ok", "scripts": sorted(self.book.scripts)})
        else:
            self._error(404, "not_found_error", f"no route {self.path}")

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/v1/messages":
            return self._error(404, "not_found_error", f"no route {self.path}")
        auth = self.headers.get("x-api-key") or self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not auth:
            return self._error(401, "authentication_error", "missing x-api-key or Authorization header")
        if not self.headers.get("anthropic-version"):
            return self._error(400, "invalid_request_error", "anthropic-version header required")
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "invalid_request_error", "the request body is not valid JSON")
        problem = _problem(body)
        if problem:
            return self._error(400, "invalid_request_error", problem)
        try:
            status, payload, delay = reply(self.book, body)
        except ScriptError as exc:
            return self._error(400, "invalid_request_error", str(exc))
        if delay:
            time.sleep(delay)  # scripted latency, to let tests act mid-session
        self._send(status, payload)


def serve(script: str | Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start the server in a background thread and return it (server.server_address has the port)."""
    book = ScriptBook(script)
    handler = type("ScriptedHandler", (Handler,), {"book": book})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="model-server", daemon=True).start()
    return server
