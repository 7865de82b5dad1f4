"""Audit events in the shape of OCSF (Open Cybersecurity Schema Framework) 1.1, class API
Activity (6003), for a SIEM. Warden's own fields travel in `unmapped`, with the event's leaf
hash (and, in an export with proofs, its inclusion proof), so a SIEM can verify what it received."""

from __future__ import annotations

from datetime import datetime
from typing import Any

OCSF_VERSION = "1.1.0"
CLASS_API_ACTIVITY, CATEGORY_APPLICATION = 6003, 6
ACTIVITY = {"created": 1, "started": 1, "read": 2, "updated": 3, "deleted": 4, "terminated": 4}
FAILED = {"denied", "refused", "failed", "rejected", "expired", "unverified", "withheld"}
SEVERE = {"alert.raised": 4, "action.refused": 4, "egress.refused": 4, "session.termination_unverified": 4}


def _activity(kind: str) -> int:
    return next((value for word, value in ACTIVITY.items() if kind.endswith(word)), 99)


def to_ocsf(event: dict[str, Any]) -> dict[str, Any]:
    at: datetime = event["at"] if isinstance(event["at"], datetime) else datetime.fromisoformat(event["at"])
    activity = _activity(event["kind"])
    outcome = event.get("outcome") or ""
    actor = event.get("actor") or ""
    who = (
        {"user": {"name": actor.removeprefix("user:"), "type": "User"}}
        if actor.startswith("user:")
        else {"app_name": actor}
    )
    severity = SEVERE.get(event["kind"], 3 if outcome in FAILED else 1)
    return {
        "class_uid": CLASS_API_ACTIVITY,
        "class_name": "API Activity",
        "category_uid": CATEGORY_APPLICATION,
        "category_name": "Application Activity",
        "activity_id": activity,
        "type_uid": CLASS_API_ACTIVITY * 100 + activity,
        "time": int(at.timestamp() * 1000),
        "time_dt": at.isoformat(),
        "severity_id": severity,
        "status_id": 2 if outcome in FAILED else 1,
        "status": outcome or "success",
        "message": f"{event['kind']} {outcome}".strip(),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": str(event["seq"]) if event.get("seq") is not None else f"pending:{event['hash']}",
            "sequence": event.get("seq"),
            "correlation_uid": event.get("session") or None,
            "log_name": "warden.audit",
            "log_provider": "warden",
            "product": {"name": "Warden", "vendor_name": "Warden", "uid": "warden"},
        },
        "actor": who,
        "api": {"operation": event["kind"], "service": {"name": event.get("system") or "warden"}},
        "unmapped": {
            key: event.get(key)
            for key in ("workflow", "system", "data_type", "action", "tier", "outcome", "details", "seq", "hash")
        },
    }
