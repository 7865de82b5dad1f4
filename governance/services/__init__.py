"""Every change to governance state: agent identities, workflows (access map, tiers,
destinations), context rules, lists, credentials, access reviews and campaigns.

Services are keyword-only and typed, take an explicit Actor (governance.actors), check the
rules that hold on every entry point (step-up for provisioning, separation of duties, reasons
for revocations), and write their audit events in the same transaction as the change. The
web UI, `policy_apply`, the CLI commands and the periodic tasks all call these functions;
Django admin is read-only (governance/admin.py).
"""

from __future__ import annotations

from governance.services.base import Refused, require_role, require_stepup
from governance.services.identities import (
    agent_identity_create,
    agent_identity_deprovision,
    agent_identity_reactivate,
    agent_identity_set_status,
    agent_identity_suspend,
    agent_workflow_withdraw,
)
from governance.services.policy import (
    PolicyRefused,
    context_rule_update,
    credential_set,
    plan_digest,
    policy_apply,
    workflow_update,
)
from governance.services.reviews import (
    access_review_decide,
    campaign_create,
    campaign_enforce_deadline,
    campaign_item_decide,
)

__all__ = [
    "PolicyRefused",
    "Refused",
    "access_review_decide",
    "agent_identity_create",
    "agent_identity_deprovision",
    "agent_identity_reactivate",
    "agent_identity_set_status",
    "agent_identity_suspend",
    "agent_workflow_withdraw",
    "campaign_create",
    "campaign_enforce_deadline",
    "campaign_item_decide",
    "context_rule_update",
    "credential_set",
    "plan_digest",
    "policy_apply",
    "require_role",
    "require_stepup",
    "workflow_update",
]
