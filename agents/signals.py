"""Events the runtime announces after commit, for notifications (connected by the approvals app)."""

from django.dispatch import Signal

action_awaiting_approval = Signal()  # action_request
action_notified = Signal()  # action_request (tier 2, after it executed)
session_resumable = Signal()  # session, action_request: a paused session may continue
handoff_created = Signal()  # handoff
alert_raised = Signal()  # alert
