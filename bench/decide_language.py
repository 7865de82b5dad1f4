"""decide() with the policy language of issue 14 against Cedar, on an equivalent policy.

    .venv/bin/python bench/decide_language.py [--calls 3000]

The policy is tests/governance/language_policy.yaml (workflow `payments`): nested all/not
blocks, named lists, if_present, case folding, session facts (counts, running totals, data
read) and destinations with an unlisted outcome. The mix is six calls, from a plain read to a
blocked recipient. Cedar (`cedarpy`, policies and entities parsed once) answers the same
questions with one `permit` per tier rule and condition, the tier being the highest among the
determining policies. The session facts go to Cedar in its context, as Warden passes them to
decide(). Cedar has no regular expressions and no case folding: `like` patterns and a
lowercased copy of the text stand in, which makes Cedar's side of the mix easier, not harder.
Needs no database.

Prints p50 per case for both, calls/s over the mix and the ratio; each figure is the median of
3 runs. Targets (issue 14): decide() p50 <= 30 us for every case, and no slower than Cedar.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KNOWN, OTHER = "DE89370400440532013000", "FR7630006000011234567890189"
# name -> (action, params, facts as stored on the session, expected tier)
MIX: dict[str, tuple[str, dict[str, Any], dict[str, Any], int]] = {
    "read, no facts": ("bank.get_balance", {}, {}, 1),
    "small payment, known payee": (
        "bank.send_money",
        {"iban": KNOWN, "amount": 50},
        {"counts": {"bank.get_balance": 1}},
        2,
    ),
    "all/not block: new payee": (
        "bank.send_money",
        {"iban": OTHER, "amount": 500},
        {"counts": {"bank.get_balance": 1}},
        3,
    ),
    "running total over 1000": (
        "bank.send_money",
        {"iban": KNOWN, "amount": 80},
        {"counts": {"bank.get_balance": 1, "bank.send_money": 12}, "sums": {"bank.send_money": {"amount": 990}}},
        3,
    ),
    "mail with cc, blocked to": (
        "mail.send_email",
        {"to": ["evil@attacker.example"], "cc": ["ann@example.com"], "body": "hi"},
        {},
        4,
    ),
    "chat, case-insensitive": ("chat.post", {"channel": "#general", "text": "Hello"}, {}, 2),
}

AGENT = 'principal == Agent::"pay-bot"'
CEDAR_POLICIES = [
    (1, f'permit({AGENT}, action == Action::"bank.get_balance", resource);'),
    (2, f'permit({AGENT}, action == Action::"bank.get_balance", resource) when {{ context.count_self > 3 }};'),
    (2, f'permit({AGENT}, action == Action::"bank.send_money", resource);'),
    (
        3,
        f'permit({AGENT}, action == Action::"bank.send_money", resource) when {{ context.amount > 100 && '
        '!(["DE89370400440532013000", "GB29NWBK60161331926819"].contains(context.iban)) };',
    ),
    (
        3,
        f'permit({AGENT}, action == Action::"bank.send_money", resource) when {{ context.total + context.amount > 1000 }};',
    ),
    (
        3,
        f'permit({AGENT}, action == Action::"bank.send_money", resource) when {{ context has note && '
        '(context.note_lower like "*ignore previous instructions*" || context.note_lower like "*wire transfer*") };',
    ),
    (3, f'permit({AGENT}, action == Action::"bank.send_money", resource) when {{ context.count_balance == 0 }};'),
    (
        3,
        f'permit({AGENT}, action == Action::"bank.send_money", resource) when {{ '
        '!(["DE89370400440532013000"].contains(context.iban)) };',
    ),
    (2, f'permit({AGENT}, action == Action::"mail.send_email", resource);'),
    (
        3,
        f'permit({AGENT}, action == Action::"mail.send_email", resource) when {{ context has cc_domains && '
        '!(["example.com"].containsAll(context.cc_domains)) };',
    ),
    (
        4,
        f'permit({AGENT}, action == Action::"mail.send_email", resource) when {{ context.to.contains("evil@attacker.example") }};',
    ),
    (3, f'permit({AGENT}, action == Action::"mail.send_email", resource) when {{ context.sensitivity_rank >= 2 }};'),
    (1, f'permit({AGENT}, action == Action::"chat.post", resource);'),
    (2, f'permit({AGENT}, action == Action::"chat.post", resource) when {{ context.text_lower == "hello" }};'),
    (2, f'permit({AGENT}, action == Action::"chat.post", resource) when {{ context.read.contains("bank.account") }};'),
    (3, f'permit({AGENT}, action == Action::"chat.post", resource) when {{ context.channel != "#general" }};'),
]
TIER_OF = {f"policy{i}": tier for i, (tier, _) in enumerate(CEDAR_POLICIES)}
RANK = {"public": 0, "internal": 1, "confidential": 2, "restricted": 3}


def warden_decider() -> Any:
    from governance.facts import SessionFacts
    from governance.policy import decide
    from governance.policyfile import from_document, load, snapshot_from_state

    text = (ROOT / "tests" / "governance" / "language_policy.yaml").read_text()
    snap = snapshot_from_state(from_document(load(text)), "payments")
    facts = {name: SessionFacts.from_json(stored, "internal") for name, (_, _, stored, _) in MIX.items()}

    def run(name: str) -> int | None:
        action, params, _, _ = MIX[name]
        return decide(snap, action, params, facts=facts[name]).tier

    return run


def cedar_context(action: str, params: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """What Warden hands decide(), in Cedar's terms (facts flattened, text lowered)."""
    counts, sums = stored.get("counts", {}), stored.get("sums", {})
    context: dict[str, Any] = {
        **params,
        "count_self": counts.get(action, 0),
        "count_balance": counts.get("bank.get_balance", 0),
        "total": sums.get(action, {}).get("amount", 0),
        "sensitivity_rank": RANK["internal"],
        "read": list(stored.get("data_objects", [])),
    }
    if "note" in params:
        context["note_lower"] = params["note"].lower()
    if "text" in params:
        context["text_lower"] = params["text"].lower()
    if "cc" in params:
        context["cc_domains"] = [a.rsplit("@", 1)[-1].lower() for a in params["cc"]]
    return context


def cedar_decider() -> Any:
    import cedarpy

    policies = cedarpy.PolicySet.from_str("\n".join(text for _, text in CEDAR_POLICIES))
    entities = cedarpy.Entities.from_json_str(
        json.dumps([{"uid": {"type": "Agent", "id": "pay-bot"}, "attrs": {}, "parents": []}])
    )

    def run(name: str) -> int | None:
        action, params, stored, _ = MIX[name]
        result = cedarpy.is_authorized(
            {
                "principal": 'Agent::"pay-bot"',
                "action": f'Action::"{action}"',
                "resource": 'System::"bank"',
                "context": cedar_context(action, params, stored),
            },
            policies,
            entities,
        )
        if not result.allowed:
            return None
        return max(TIER_OF[p] for p in result.diagnostics.reasons)

    return run


def one_run(decider: Any, calls: int) -> tuple[dict[str, float], float]:
    """p50 in microseconds per case, and calls/s over the whole mix."""
    p50 = {}
    total_ns = 0
    for name, (*_, expected) in MIX.items():
        got = decider(name)
        assert got == expected, (name, got, expected)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            decider(name)
            times.append(time.perf_counter_ns() - t0)
        total_ns += sum(times)
        p50[name] = statistics.median(times) / 1000
    return p50, calls * len(MIX) / (total_ns / 1e9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="calls per case and run")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
    os.environ.setdefault("WARDEN_DATA_DIR", "/tmp/warden-bench")
    import django

    django.setup()
    warden, cedar = warden_decider(), cedar_decider()
    runs: dict[str, list[tuple[dict[str, float], float]]] = {"warden": [], "cedar": []}
    for _ in range(3):  # interleaved, so that both see the same machine
        runs["warden"].append(one_run(warden, args.calls))
        runs["cedar"].append(one_run(cedar, args.calls))
    med = {
        who: ({case: statistics.median(r[0][case] for r in rs) for case in MIX}, statistics.median(r[1] for r in rs))
        for who, rs in runs.items()
    }
    print(f"decide() vs Cedar (cedarpy), the policy language's mix, {args.calls} calls per case, median of 3 runs")
    print(f"  {'case':<28} {'decide() p50':>13} {'Cedar p50':>11}")
    for case in MIX:
        print(f"  {case:<28} {med['warden'][0][case]:>10.1f} us {med['cedar'][0][case]:>8.1f} us")
    worst = max(med["warden"][0].values())
    ratio = med["warden"][1] / med["cedar"][1]
    print(
        f"  calls/s over the mix: decide() {med['warden'][1]:,.0f}, Cedar {med['cedar'][1]:,.0f}: "
        f"ratio {ratio:.1f}x (target >= 1x); slowest case p50 {worst:.1f} us (target <= 30 us)"
    )


if __name__ == "__main__":
    main()
