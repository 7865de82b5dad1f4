"""Every audit kind Warden writes is in the registry (audit/kinds.py)."""

from __future__ import annotations

import re
from pathlib import Path

from agents import lifecycle
from audit.kinds import KINDS

ROOT = Path(__file__).resolve().parent.parent.parent
LITERAL = re.compile(r'(?:audit\.record|_audit_refusal|kind=)\(?\s*"([a-z_]+\.[a-z_.]+)"')
# The kinds written with an f-string, expanded by hand: keep in step with the code.
EXPANDED = {
    "alert.{status}": ["alert.acknowledged", "alert.resolved"],
    "policy.{change.op}d": ["policy.created", "policy.updated", "policy.deleted"],
    "provisioning.agent_{status}": [
        "provisioning.agent_active",
        "provisioning.agent_suspended",
        "provisioning.agent_deprovisioned",
    ],
    "review.{locked.status}": ["review.confirmed", "review.revoked"],
}


def _source_kinds() -> tuple[set[str], set[str]]:
    literal, formatted = set(), set()
    for app in ("agents", "approvals", "console", "governance", "audit", "web", "config"):
        for path in (ROOT / app).rglob("*.py"):
            if "/migrations/" in path.as_posix():
                continue
            text = path.read_text()
            literal |= set(LITERAL.findall(text))
            formatted |= set(re.findall(r'audit\.record\(\s*f"([^"]+)"', text))
    return literal, formatted


def test_every_kind_written_is_registered() -> None:
    literal, formatted = _source_kinds()
    assert literal, "the scan found no kinds: the pattern no longer matches the code"
    assert sorted(literal - set(KINDS)) == []
    for pattern in formatted:
        if pattern == "provisioning.{kind}":
            continue  # governance.services.policy.apply_state: each caller passes a literal kind
        assert pattern in EXPANDED, f"an f-string kind the test does not know: {pattern}"
        assert set(EXPANDED[pattern]) <= set(KINDS)


def test_the_lifecycle_writes_registered_kinds() -> None:
    assert set(lifecycle.ACTION_KINDS.values()) <= set(KINDS)
    assert set(lifecycle.SESSION_KINDS.values()) <= set(KINDS)
