"""Runtime records: sessions and their tokens, tool calls, handoffs and security alerts."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from governance.models import AgentIdentity, Workflow


class AgentSession(models.Model):
    """One execution of one workflow by one agent."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        AWAITING_APPROVAL = "awaiting_approval"
        COMPLETED = "completed"
        HANDED_OFF = "handed_off"
        TERMINATED = "terminated"

    class RunState(models.TextChoices):
        """Where the built-in runner is; external runtimes leave it at `external`."""

        EXTERNAL = "external"  # driven by calls to the gateway in-process; Warden executes
        API = "api"  # driven through the decision API; the runtime executes and reports
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        DONE = "done"

    LIVE = (Status.ACTIVE, Status.AWAITING_APPROVAL)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(AgentIdentity, on_delete=models.PROTECT, related_name="sessions")
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="sessions")
    workflow_version = models.PositiveIntegerField()
    trigger = models.CharField(max_length=255, help_text="what started it: cli, api, schedule, webhook:<name>")
    initiated_by = models.CharField(max_length=255, help_text="the user or system that initiated it")
    input = models.TextField(blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.ACTIVE)
    run_state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.EXTERNAL)
    run_lease_until = models.DateTimeField(null=True, blank=True)
    step = models.PositiveIntegerField(default=0)
    conversation = models.JSONField(default=list, blank=True)
    clear_after_step = models.JSONField(default=list, blank=True)
    pending_tool_uses = models.JSONField(default=list, blank=True)
    consecutive_failures = models.PositiveSmallIntegerField(default=0)
    scope = models.JSONField(
        default=dict, blank=True, help_text="what the initiator narrowed the session to (agents.scopes); {} for none"
    )
    data_sensitivity = models.CharField(
        max_length=16, default="public", help_text="the most sensitive class of data the agent has been given"
    )
    facts = models.JSONField(
        default=dict, blank=True, help_text="what conditions may read about the session (governance.facts)"
    )
    facts_seq = models.PositiveIntegerField(default=0, help_text="bumped with every change of facts")
    final_answer = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    paused_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    termination_reason = models.CharField(max_length=64, blank=True)
    termination_verified = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="session_status_expiry"),
            models.Index(fields=["run_state", "run_lease_until"], name="session_run_lease"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} by {self.agent.name} ({self.status})"

    @property
    def audit_label(self) -> str:
        return str(self.id)

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE


class SessionToken(models.Model):
    """The short-lived credential of one session. Only its SHA-256 is stored."""

    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token {self.token_hash[:8]}… of {self.session_id}"


class ActionRequest(models.Model):
    """One tool call, from the gateway's decision to its result."""

    class Status(models.TextChoices):
        DENIED = "denied"  # outside the access map, or a bad token/session
        REFUSED = "refused"  # tier 4
        AWAITING_APPROVAL = "awaiting_approval"
        APPROVED = "approved"
        REJECTED = "rejected"
        EXPIRED = "expired"
        CANCELLED = "cancelled"
        ALLOWED = "allowed"  # tier 1/2, or an approved tier 3, about to execute
        EXECUTING = "executing"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        REPORTED = "reported"  # executed by an external runtime, which reported the outcome

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.REPORTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="action_requests")
    tool_use_id = models.CharField(max_length=128, blank=True)
    action = models.CharField(max_length=128)
    system = models.CharField(max_length=64, blank=True)
    tier = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    grants_used = models.JSONField(default=list, blank=True)
    params = models.JSONField(
        default=dict, blank=True, help_text="after context rules: never-persist values fingerprinted"
    )
    params_hash = models.CharField(max_length=64, blank=True)
    sealed_params = models.TextField(
        blank=True, help_text="the exact parameters, encrypted, kept only until a tier 3 action ends"
    )
    status = models.CharField(max_length=24, choices=Status.choices)
    quorum = models.PositiveSmallIntegerField(default=1)
    expires_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="what the model was given, after context rules")
    error = models.TextField(blank=True)
    decided_reason = models.TextField(blank=True, help_text="the reviewer's comment on approval or rejection")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    executed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "tool_use_id"],
                condition=~models.Q(tool_use_id=""),
                name="action_request_tool_use_once",
            )
        ]
        indexes = [
            # What the sweeper, the queue and the recovery read: the actions a person has still
            # to decide or that wait to run. Partial, so that a tier 1 call's row enters no
            # such entry (decision 0022).
            models.Index(
                fields=["status", "expires_at"],
                condition=models.Q(status__in=["awaiting_approval", "approved"]),
                name="action_open_expiry",
            ),
            # The reviewers' history (tier 3 only, newest first, by outcome): tier 1 calls,
            # nearly every row, enter none of it.
            models.Index(fields=["-created_at"], condition=models.Q(tier=3), name="action_reviewed_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.action} (tier {self.tier}, {self.status})"

    @property
    def audit_label(self) -> str:
        return self.action


class HumanHandoff(models.Model):
    """Where a failure or an ambiguity hands a session to a person."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLAIMED = "claimed"
        RESOLVED = "resolved"

    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="handoffs")
    trigger = models.CharField(max_length=255)
    context = models.JSONField(default=dict, blank=True, help_text="what the responder receives, after context rules")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    responder = models.CharField(max_length=255, blank=True)
    resolution = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"handoff of {self.session_id}: {self.trigger}"


class SecurityAlert(models.Model):
    """A tier 4 attempt or an anomaly, for the security team."""

    class Kind(models.TextChoices):
        TIER4_ATTEMPT = "tier4_attempt"
        REVOKED_TOKEN = "revoked_token"
        SESSION_OVERRUN = "session_overrun"
        FORGED_TASK = "forged_task"
        EXFILTRATION = "exfiltration"
        CREDENTIAL_ROTATION = "credential_rotation"
        ANOMALY = "anomaly"

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=16, default="high")
    session = models.ForeignKey(AgentSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    agent = models.ForeignKey(AgentIdentity, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    handled_by = models.CharField(max_length=255, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="what security found or did, for whoever reads the alert next")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.summary}"


class SessionDatabaseRole(models.Model):
    """A PostgreSQL login role that exists for one session only (per-session database credentials)."""

    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="database_roles")
    system = models.CharField(max_length=64)
    role = models.CharField(max_length=63, unique=True)
    password_encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField()
    dropped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.role} ({self.system})"


class AgentKey(models.Model):
    """A long-lived secret an external runtime uses to start sessions for one agent identity.
    Shown once when created, stored only as a SHA-256, rotatable (create a new one, revoke the old)."""

    agent = models.ForeignKey(AgentIdentity, on_delete=models.CASCADE, related_name="keys")
    prefix = models.CharField(max_length=16, help_text="the first characters, to tell keys apart")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… of {self.agent.name}"
