"""Regression tests for the hardening issue, items 2, 4 and 14.

2: decide() is pure: a params_schema can never make it fetch anything.
4: links are read as browsers read them (WHATWG), including bare host/path links in text.
14: admin-written regular expressions run on a linear-time engine (RE2).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.destinations import _matches
from governance.paramschema import schema_problems
from governance.policy import build_snapshot, decide
from governance.policyfile import PolicyError, load, snapshot_from_state

ROOT = Path(__file__).resolve().parents[2]


# -- Item 2: no I/O at decision time --------------------------------------------------------------


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that would hand out a permissive schema, and counts who asks."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = b'{"type": "object"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/schema+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def _snapshot(schema: dict) -> object:
    actions = {"svc.act": {"system": "svc", "mode": "read", "data_objects": ["svc.obj"], "params_schema": schema}}
    workflow = {
        "name": "w",
        "access": [{"data_object": "svc.obj", "mode": "read"}],
        "tiers": [{"action": "svc.act", "tier": 1}],
    }
    return build_snapshot(workflow, actions)


def test_a_remote_ref_is_never_fetched_and_the_call_is_refused(schema_server) -> None:
    base, asked = schema_server
    for schema in (
        {"$ref": f"{base}/schema.json"},
        {"type": "object", "properties": {"a": {"$ref": f"{base}/a.json"}}},
        {"$id": f"{base}/root.json", "properties": {"a": {"$ref": "a.json"}}},
        {"$dynamicRef": f"{base}/d.json"},
    ):
        decision = decide(_snapshot(schema), "svc.act", {"a": 1})
        assert not decision.allowed and decision.tier is None
        assert "outside the schema" in decision.reason
    assert asked == []


@pytest.mark.parametrize(
    "schema, message",
    [
        ({"$ref": "http://127.0.0.1:9/x.json"}, "points outside the schema"),
        ({"$ref": "other.json"}, "points outside the schema"),
        ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, "does not resolve inside the schema"),
        ({"$schema": "http://json-schema.org/draft-04/schema#"}, "JSON Schema 2020-12"),
        ({"properties": {"a": {"pattern": "(?<=x)y"}}}, "invalid regular expression"),
        ({"patternProperties": {"(a)\\1": {}}}, "invalid regular expression"),
        ({"patternProperties": {"^a": {}}, "unevaluatedProperties": False}, "unevaluatedProperties"),
    ],
)
def test_policy_apply_refuses_a_schema_that_is_not_self_contained_or_not_re2(schema, message) -> None:
    assert any(message in p for p in schema_problems(schema)), schema_problems(schema)
    text = f"""
version: 1
systems: [{{name: svc, connector: demo}}]
data_objects: [{{name: svc.obj, system: svc}}]
action_types: [{{name: svc.act, system: svc, mode: read, data_objects: [svc.obj], params_schema: {json.dumps(schema)}}}]
"""
    with pytest.raises(PolicyError) as refused:
        load(text)
    assert "action_types[0].params_schema" in str(refused.value) and message in str(refused.value)


def test_local_refs_still_work() -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"$ref": "#/$defs/code"}, "node": {"$ref": "#node"}},
        "$defs": {"code": {"type": "string", "pattern": "^C-[0-9]+$"}, "n": {"$anchor": "node", "type": "integer"}},
    }
    assert schema_problems(schema) == []
    snap = _snapshot(schema)
    assert decide(snap, "svc.act", {"code": "C-12", "node": 3}).allowed
    assert not decide(snap, "svc.act", {"code": "C-12\n"}).allowed


# -- Item 4: links read as a browser reads them ---------------------------------------------------


@pytest.fixture
def triage(example_state):
    return snapshot_from_state(example_state, "ticket-triage")


@pytest.mark.parametrize(
    "body",
    [
        "Sign in at https://evil.test\\@example.com/ today",  # '\' ends the host for a browser
        "Sign in at https:evil.test",
        "Sign in at https:/\\evil.test/login",
        "Sign in at evil.test/login",  # a bare host/path link
        "Sign in at (www.evil.test).",
        "Sign in at http://evil。test/",
        "Sign in at HTTPS://EVIL.TEST:443/",
        "Sign in at <https://docs.example.com.evil.test/>",
        "Mail mailto:help@example.com?cc=leak@evil.test",
    ],
)
def test_a_link_a_browser_resolves_outside_the_allowlist_needs_approval(triage, body) -> None:
    params = {"recipients": ["ann@example.com"], "subject": "Hi", "body": body}
    assert decide(triage, "mail.send_email", params).tier == 3


@pytest.mark.parametrize(
    "body", ["See https://docs.example.com/x.", "(https://example.com/a_(b))", "e.g. version 3.14, i.e. done."]
)
def test_company_links_and_plain_prose_stay_at_tier_2(triage, body) -> None:
    params = {"recipients": ["ann@example.com"], "subject": "Hi", "body": body}
    assert decide(triage, "mail.send_email", params).tier == 2


@pytest.mark.parametrize(
    "target, ok",
    [
        ("https://hooks.example.com/partner/events", True),
        ("https://HOOKS.example.com:443/partner", True),
        ("https://hooks.example.com/partner/../admin", False),  # the parser removes dot segments
        ("https://hooks.example.com/partner/%2e%2e/admin", False),
        ("https://hooks.example.com/partner-evil", False),
        ("https://hooks.example.com\\@evil.test/partner", False),
        ("https://evil.test\\@hooks.example.com/partner", False),
        ("https://user@hooks.example.com/partner", False),
        ("http://hooks.example.com/partner", False),
        ("not a url", False),
    ],
)
def test_a_webhook_destination_is_compared_as_an_http_client_reads_it(target, ok) -> None:
    listed = {"type": "webhook", "value": "https://hooks.example.com/partner"}
    assert _matches(listed, "webhook", target) is ok


@pytest.mark.parametrize(
    "target, ok",
    [
        ("ann@example.com", True),
        ("ann@support.example.com", True),
        ("ann@example.com@evil.test", False),
        ("ann@evil.test#@example.com", False),
        ("ann@example.com.evil.test", False),
    ],
)
def test_an_email_domain_destination_needs_every_reading_in_the_domain(target, ok) -> None:
    assert _matches({"type": "email_domain", "value": "example.com"}, "email", target) is ok


# -- Item 14: a linear-time engine ------------------------------------------------------------------

_PATHOLOGICAL = textwrap.dedent(
    """
    import os, django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
    django.setup()
    from governance.conditions import compile_condition
    from governance.policy import build_snapshot, decide
    text = "a" * 40 + "!"
    cond = compile_condition({"param": "p", "op": "matches", "value": "^(a+)+$", "tier": 3}, {})
    assert cond.holds({"p": text}) is False
    schema = {"type": "object", "properties": {"p": {"type": "string", "pattern": "^(a|aa)+$"}}}
    actions = {"s.a": {"system": "s", "mode": "read", "data_objects": ["s.o"], "params_schema": schema}}
    snap = build_snapshot({"name": "w", "access": [{"data_object": "s.o", "mode": "read"}],
                           "tiers": [{"action": "s.a", "tier": 1}]}, actions)
    assert not decide(snap, "s.a", {"p": text}).allowed
    print("done")
    """
)


def test_catastrophic_patterns_finish() -> None:
    """A backtracking engine needs about 2**40 steps for these; RE2 needs about 40. The deadline is
    only there so that a backtracking engine fails this test instead of hanging the suite."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PATHOLOGICAL], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a catastrophic pattern did not finish: the engine backtracks")
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr


def test_python_only_syntax_is_refused_not_reinterpreted() -> None:
    from governance.conditions import compile_condition

    for pattern in ("(?=a)", "(?!a)", "(?<=a)b", "(a)\\1", "(?P=name)"):
        with pytest.raises(ValueError, match="invalid regular expression"):
            compile_condition({"param": "p", "op": "matches", "value": pattern, "tier": 3}, {})
