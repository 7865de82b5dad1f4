"""The registry of audit event kinds: every kind Warden writes, in one place, with what it means.

Kinds are dotted: `<subject>.<what happened>`. A test (tests/audit/test_kinds.py) fails when
code writes a kind that is not listed here, so the list stays the truth for auditors and for
the audit browser's filters.
"""

from __future__ import annotations

KINDS: dict[str, str] = {
    # a tool call (ActionRequest), one event per transition of agents/lifecycle.py
    "action.denied": "refused: outside the access map, schema, paused session, bad token",
    "action.replay_mismatch": "refused: a tool_use_id reused for another action or parameters",
    "egress.refused": "refused: data may not go to that destination",
    "action.out_of_scope": "refused: outside what the session's initiator narrowed it to",
    "action.refused": "a tier 4 (human only) attempt: refused, the session terminated",
    "action.awaiting_approval": "tier 3: waits for reviewers",
    "action.allowed": "tier 1/2 allowed; the external runtime executes it",
    "action.executing": "Warden claimed the call and is executing it",
    "action.resumed": "a call that died mid-execution is executed again under its idempotency key",
    "action.replayed": "the same call again under its tool_use_id: the first decision is answered again",
    "action.released": "approved: the quorum of reviewers was met",
    "action.rejected": "a reviewer rejected it, with a reason",
    "action.expired": "the approval came too late",
    "action.cancelled": "its session ended while it waited",
    "action.executed": "the connector returned",
    "action.failed": "the connector, or the runtime's report, says it failed",
    "action.reported": "the external runtime reports it succeeded",
    "action.execution_refused": "execution refused at the last check (state, parameters, agent)",
    "action.release_refused": "an approval could not release the call",
    # a session (AgentSession)
    "session.started": "a session began (with its scope and who started it)",
    "session.refused": "a session could not start",
    "session.token_issued": "the runner minted a fresh token for the session it claimed",
    "session.credentials_issued": "per-session database roles were made",
    "session.paused": "a tier 3 call paused it",
    "session.resumed": "a reviewer decided; the session goes on",
    "session.completed": "it ended with its final answer, or the runtime ended it",
    "session.terminated": "it was ended: tier 4, time limit, kill switch, revoked access",
    "session.handed_off": "a person took it over",
    "session.termination_verified": "the token fails, the context is empty, the roles are gone",
    "session.termination_unverified": "the checks above failed: an anomaly alert follows",
    # reviewers' work
    "approval.decided": "one reviewer's decision, bound to the parameter hash",
    "approval.refused": "a reviewer was refused (separation of duties)",
    "approval.ciba_requested": "Warden asked the IdP to confirm a reviewer's decision on their device (CIBA)",
    "approval.ciba_expired": "the reviewer did not answer on their device in time: no decision",
    "approval.ciba_failed": "a device approval failed or its ID token did not verify: no decision",
    "handoff.created": "a session was handed to a person",
    "handoff.claimed": "a person took a handoff",
    "handoff.resolved": "a handoff was resolved",
    "alert.raised": "a security alert",
    "alert.acknowledged": "security acknowledged an alert",
    "alert.resolved": "security resolved an alert",
    # governance state (governance/services)
    "provisioning.agent_created": "an agent identity was created",
    "provisioning.agent_active": "an agent identity was reactivated",
    "provisioning.agent_suspended": "an agent identity was suspended; its sessions ended",
    "provisioning.agent_deprovisioned": "an agent identity was deprovisioned; its sessions ended",
    "provisioning.workflow_withdrawn": "a workflow was taken from an agent; its sessions on it ended",
    "provisioning.workflow_updated": "a workflow's access map or tiers were edited",
    "provisioning.context_rule_updated": "a context rule was edited",
    "provisioning.credential_set": "a credential's secret was replaced (never the secret itself)",
    "provisioning.policy_applied": "a policy file was applied from the browser",
    "provisioning.agent_key_created": "an agent key was created",
    "provisioning.api_token_created": "a personal API token was created",
    "policy.created": "a policy file created an object",
    "policy.updated": "a policy file changed an object",
    "policy.deleted": "a policy file deleted an object",
    "policy.applied": "a policy file was applied (its source and summary)",
    "review.opened": "an access review opened after a workflow change",
    "review.confirmed": "an access review was confirmed",
    "review.revoked": "an access review revoked the workflow",
    "review.expired": "an access review was not decided in time",
    "recertification.campaign_created": "a recertification campaign opened",
    "recertification.item_decided": "an agent was certified or revoked in a campaign",
    "recertification.item_overdue": "a campaign item passed its deadline",
    "credential.rotated": "a service credential was rotated",
    "credential.rotation_failed": "a rotation failed; the old secret stays",
    "secrets.rekeyed": "stored secrets were re-encrypted under the newest key",
    # sign-in and the API
    "auth.login": "a person signed in",
    "auth.logout": "a person signed out",
    "api.cross_session_refused": "a session token asked about another session's call",
    "task.refused": "a task message that names no work of its session was refused",
}


def is_registered(kind: str) -> bool:
    return kind in KINDS
