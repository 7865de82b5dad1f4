"""decide() against Cedar (issue 13): the same decisions on an equivalent policy, in one process.

    .venv/bin/python bench/decide.py [--calls 3000]

The mix is six calls on the example policy's refund-triage workflow: a tier 1 read, a tier 2
refund, a refund raised to tier 3 by a condition, one raised to tier 4, an action outside the
access map, and parameters the schema refuses. Cedar (`cedarpy`, policies and entities parsed
once) answers the same question: one `permit` per tier rule and condition, annotated with its
tier; the tier is the highest among the determining policies, and no determining policy is a
refusal. Cedar has no JSON schema: its policies check what the schema checks for these calls
(`like` stands in for the RE2 pattern). Needs no database.

Prints p50 per case for both, calls/s over the mix, and the ratio; each figure is the median
of 3 runs. Targets: >= 2x Cedar's calls/s, p50 <= 10 us for every case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REFUND = {"customer_id": "C-1001", "currency": "EUR", "reason": "duplicate charge"}
MIX = {
    "tier 1 read": ("crm.get_customer", {"customer_id": "C-1001"}, 1),
    "tier 2 refund": ("crm.issue_refund", {**REFUND, "amount": 50}, 2),
    "tier 3 by condition": ("crm.issue_refund", {**REFUND, "amount": 500}, 3),
    "tier 4 by condition": ("crm.issue_refund", {**REFUND, "amount": 6000}, 4),
    "outside the access map": ("crm.delete_customer", {"customer_id": "C-1001"}, None),
    "schema refuses": ("crm.get_customer", {"customer_id": "X"}, None),
}

# One policy per tier rule and condition of refund-triage that the mix reaches, in this order
# (cedarpy names them policy0, policy1, ...).
CEDAR_POLICIES = [
    (1, 'permit(principal == Agent::"refund-bot", action == Action::"crm.get_customer", resource)'
     ' when { context has customer_id && context.customer_id like "C-*" };'),
    (1, 'permit(principal == Agent::"refund-bot", action == Action::"crm.list_refunds", resource);'),
    (1, 'permit(principal == Agent::"refund-bot", action == Action::"ticketing.get_ticket", resource);'),
    (2, 'permit(principal == Agent::"refund-bot", action == Action::"crm.add_note", resource);'),
    (2, 'permit(principal == Agent::"refund-bot", action == Action::"ticketing.add_comment", resource);'),
    (2, 'permit(principal == Agent::"refund-bot", action == Action::"crm.issue_refund", resource)'
     ' when { context.amount > 0 && ["EUR", "USD", "GBP"].contains(context.currency) };'),
    (3, 'permit(principal == Agent::"refund-bot", action == Action::"crm.issue_refund", resource)'
     ' when { context.amount > 100 };'),
    (3, 'permit(principal == Agent::"refund-bot", action == Action::"crm.issue_refund", resource)'
     ' when { context.currency != "EUR" };'),
    (4, 'permit(principal == Agent::"refund-bot", action == Action::"crm.issue_refund", resource)'
     ' when { context.amount > 5000 };'),
]  # fmt: skip
TIER_OF = {f"policy{i}": tier for i, (tier, _) in enumerate(CEDAR_POLICIES)}


def warden_decider() -> object:
    from governance.policy import decide
    from governance.policyfile import from_document, load, snapshot_from_state

    state = from_document(load((ROOT / "examples" / "policy.yaml").read_text()))
    snap = snapshot_from_state(state, "refund-triage")

    def run(action: str, params: dict) -> int | None:
        return decide(snap, action, params).tier

    return run


def cedar_decider() -> object:
    import cedarpy

    policies = cedarpy.PolicySet.from_str("\n".join(text for _, text in CEDAR_POLICIES))
    entities = cedarpy.Entities.from_json_str(
        json.dumps([{"uid": {"type": "Agent", "id": "refund-bot"}, "attrs": {}, "parents": []}])
    )

    def run(action: str, params: dict) -> int | None:
        result = cedarpy.is_authorized(
            {
                "principal": 'Agent::"refund-bot"',
                "action": f'Action::"{action}"',
                "resource": 'System::"crm"',
                "context": params,
            },
            policies,
            entities,
        )
        if not result.allowed:
            return None
        return max(TIER_OF[p] for p in result.diagnostics.reasons)

    return run


def one_run(decider: object, calls: int) -> tuple[dict[str, float], float]:
    """p50 in microseconds per case, and calls/s over the whole mix."""
    p50 = {}
    total_ns = 0
    for name, (action, params, expected) in MIX.items():
        got = decider(action, params)  # type: ignore[operator]
        assert got == expected, (name, got, expected)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            decider(action, params)  # type: ignore[operator]
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
    print(f"decide() vs Cedar (cedarpy), refund-triage, {args.calls} calls per case, median of 3 runs")
    print(f"  {'case':<24} {'decide() p50':>13} {'Cedar p50':>11}")
    for case in MIX:
        print(f"  {case:<24} {med['warden'][0][case]:>10.1f} us {med['cedar'][0][case]:>8.1f} us")
    worst = max(med["warden"][0].values())
    ratio = med["warden"][1] / med["cedar"][1]
    print(
        f"  calls/s over the mix: decide() {med['warden'][1]:,.0f}, Cedar {med['cedar'][1]:,.0f}: "
        f"ratio {ratio:.1f}x (target >= 2x); slowest case p50 {worst:.1f} us (target <= 10 us)"
    )


if __name__ == "__main__":
    main()
