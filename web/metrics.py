"""Gauges read at scrape time. Counters and histograms live with the code they measure:
audit.chain (append latency), audit.sequencer (batches), agents.gateway (decisions), approvals.services (approval wait)."""

from __future__ import annotations

from prometheus_client import Gauge

QUEUE_DEPTH = Gauge("warden_approval_queue_depth", "Tier 3 requests awaiting approval")
SESSIONS_LIVE = Gauge("warden_sessions_live", "Sessions active or awaiting approval")
AUDIT_PENDING = Gauge("warden_audit_unsequenced_events", "Audit events committed but not yet sequenced")
AUDIT_LAG = Gauge("warden_audit_sequencer_lag_seconds", "Age of the oldest audit event not yet sequenced")


def refresh_gauges() -> None:
    from agents.models import ActionRequest, AgentSession
    from audit.sequencer import lag

    QUEUE_DEPTH.set(ActionRequest.objects.filter(status=ActionRequest.Status.AWAITING_APPROVAL).count())
    SESSIONS_LIVE.set(AgentSession.objects.filter(status__in=AgentSession.LIVE).count())
    pending, seconds = lag()
    AUDIT_PENDING.set(pending)
    AUDIT_LAG.set(seconds)
