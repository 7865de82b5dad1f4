"""The governance registry: the vocabulary of DESIGN.md, one model each."""

from __future__ import annotations

from datetime import timedelta

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from governance import crypto

NAME_RE = r"^[a-z0-9][a-z0-9_.\-]*$"
name_validator = RegexValidator(NAME_RE, "use lower-case letters, digits, '.', '_' and '-'")


class Sensitivity(models.TextChoices):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"

    @classmethod
    def rank(cls, value: str) -> int:
        """0 for public up to 3 for restricted; an unknown class ranks highest (fail closed)."""
        return cls.values.index(value) if value in cls.values else len(cls.values) - 1


class Mode(models.TextChoices):
    READ = "read"
    WRITE = "write"


PACKAGE_HELP = "the policy package (policy file) that owns this object; empty: the default package"


def package_field() -> models.CharField:
    """Which policy file owns the object: policy_apply changes only the objects of its file's package."""
    return models.CharField(max_length=64, blank=True, default="", db_index=True, help_text=PACKAGE_HELP)


class System(models.Model):
    """An enterprise system that agents reach through a connector."""

    name = models.CharField(max_length=64, unique=True, validators=[name_validator])
    package = package_field()
    display_name = models.CharField(max_length=128, blank=True)
    connector = models.CharField(max_length=64, help_text="connector id, e.g. demo_crm, http, postgres")
    description = models.TextField(blank=True)
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return self.name


class DataObject(models.Model):
    """A record type in a system (crm.customer), with its sensitivity and the data type of each field."""

    name = models.CharField(max_length=128, unique=True, validators=[name_validator])
    package = package_field()
    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="data_objects")
    sensitivity = models.CharField(max_length=16, choices=Sensitivity.choices, default=Sensitivity.INTERNAL)
    description = models.TextField(blank=True)
    fields = models.JSONField(default=dict, blank=True, help_text="field name -> data type (see ContextRule)")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ActionType(models.Model):
    """A verb on a system (crm.issue_refund), with the JSON schema of its parameters."""

    name = models.CharField(max_length=128, unique=True, validators=[name_validator])
    package = package_field()
    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="action_types")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    data_objects = models.ManyToManyField(DataObject, related_name="action_types")
    params_schema = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True)
    egress = models.JSONField(
        default=dict,
        blank=True,
        help_text='where the action sends data out: {"type": "email|webhook|ticket_queue", "param": "recipients[*]"}',
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ValueList(models.Model):
    """A named list that tier conditions refer to (known_payees, company_domains)."""

    name = models.CharField(max_length=64, unique=True, validators=[name_validator])
    package = package_field()
    values = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def unlisted_refused() -> str:
    """The default of Workflow.unlisted_destinations (a JSONField default is a callable)."""
    return "refuse"


class Workflow(models.Model):
    """A named, versioned unit of work and its access map."""

    class OnReject(models.TextChoices):
        """What a session does when a reviewer rejects one of its tier 3 actions."""

        HANDOFF = "handoff"  # a person takes the session over, with the reviewer's reason
        CONTINUE = "continue"  # the model is told the reason as the tool's error, and goes on
        END = "end"  # the session is terminated

    class PolicyMode(models.TextChoices):
        """enforce: decisions are applied. log_only: decided and audited as they would be, but
        nothing below tier 4 is refused or queued (try a policy on live traffic first)."""

        ENFORCE = "enforce"
        LOG_ONLY = "log_only"

    class OutOfScope(models.TextChoices):
        """What a call outside the session's scope gets."""

        REFUSE = "refuse"
        APPROVE = "3", "tier 3: a person decides"

    name = models.CharField(max_length=128, unique=True, validators=[name_validator])
    package = package_field()
    description = models.TextField(blank=True)
    owner = models.CharField(max_length=254, blank=True, help_text="email of the owner, who gets Tier 2 notices")
    version = models.PositiveIntegerField(default=1)
    max_session_seconds = models.PositiveIntegerField(default=900, validators=[MinValueValidator(1)])
    on_reject = models.CharField(max_length=16, choices=OnReject.choices, default=OnReject.HANDOFF)
    destinations = models.JSONField(default=list, blank=True)
    mode = models.CharField(max_length=16, choices=PolicyMode.choices, default=PolicyMode.ENFORCE)
    out_of_scope = models.CharField(max_length=16, choices=OutOfScope.choices, default=OutOfScope.REFUSE)
    scope_template = models.JSONField(
        default=dict, blank=True, help_text="narrows every session, with values bound from its trigger (agents.scopes)"
    )
    archived_at = models.DateTimeField(
        null=True, blank=True, help_text="left out of its policy file while it had history: it starts no session"
    )
    unlisted_destinations = models.JSONField(
        default=unlisted_refused,
        blank=True,
        help_text="what a destination the workflow does not list gets: refuse, or tier 2 or 3",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return self.name


class WorkflowVersion(models.Model):
    """The full specification of a workflow as it was at one version."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    spec = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["workflow", "-version"]
        constraints = [models.UniqueConstraint(fields=["workflow", "version"], name="workflow_version_unique")]

    def __str__(self) -> str:
        return f"{self.workflow.name} v{self.version}"


class AccessGrant(models.Model):
    """One row of a workflow's access map: data object x mode. Read and write are separate grants."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="grants")
    data_object = models.ForeignKey(DataObject, on_delete=models.PROTECT, related_name="grants")
    mode = models.CharField(max_length=8, choices=Mode.choices)

    class Meta:
        ordering = ["workflow", "data_object__name", "mode"]
        constraints = [models.UniqueConstraint(fields=["workflow", "data_object", "mode"], name="access_grant_unique")]

    def __str__(self) -> str:
        return f"{self.workflow.name}: {self.mode} {self.data_object.name}"


class Tier(models.IntegerChoices):
    """The authorization tiers (DESIGN.md): what the enforcement point does with an action."""

    AUTOMATED = 1, "1 automated"
    NOTIFY = 2, "2 notify"
    APPROVE = 3, "3 approve"
    HUMAN_ONLY = 4, "4 human only"


class TierAssignment(models.Model):
    """Workflow x action type -> tier 1-4; conditions on the parameters may raise it, never lower it."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="tiers")
    action_type = models.ForeignKey(ActionType, on_delete=models.PROTECT, related_name="tier_assignments")
    tier = models.PositiveSmallIntegerField(
        choices=Tier.choices, validators=[MinValueValidator(Tier.AUTOMATED), MaxValueValidator(Tier.HUMAN_ONLY)]
    )
    conditions = models.JSONField(default=list, blank=True)
    quorum = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["workflow", "action_type__name"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "action_type"], name="tier_assignment_unique"),
            models.CheckConstraint(condition=models.Q(tier__gte=1, tier__lte=4), name="tier_between_1_and_4"),
            models.CheckConstraint(condition=models.Q(quorum__gte=1), name="quorum_at_least_1"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name}: {self.action_type.name} -> tier {self.tier}"


class ContextRule(models.Model):
    """How values of one data type may enter the model's context, when they are cleared, and
    whether they may ever be persisted."""

    class Handling(models.TextChoices):
        FULL = "full"
        REDACTED = "redacted"
        SUMMARIZED = "summarized"
        NEVER = "never"

    class Clear(models.TextChoices):
        STEP = "step", "after this step"
        SESSION = "session", "at the end of the session"

    data_type = models.CharField(max_length=128, unique=True, validators=[name_validator])
    package = package_field()
    handling = models.CharField(max_length=16, choices=Handling.choices, default=Handling.FULL)
    clear = models.CharField(max_length=16, choices=Clear.choices, default=Clear.SESSION)
    persist = models.BooleanField(default=True, help_text="may values appear in logs and the audit trail")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["data_type"]

    def __str__(self) -> str:
        return self.data_type


class AgentIdentity(models.Model):
    """A provisioned, non-human identity. Never a user's credentials."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"
        DEPROVISIONED = "deprovisioned"

    name = models.CharField(max_length=128, unique=True, validators=[name_validator])
    package = package_field()
    description = models.TextField(blank=True)
    owner = models.CharField(max_length=254, help_text="email of the sponsor accountable for this agent")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    recertify_by = models.DateField(null=True, blank=True)
    workflows = models.ManyToManyField(Workflow, related_name="agents", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "agent identities"

    def __str__(self) -> str:
        return self.name

    @property
    def audit_label(self) -> str:
        return f"agent:{self.name}"

    @property
    def recertification_overdue(self) -> bool:
        return self.recertify_by is not None and self.recertify_by < timezone.localdate()


class ServiceCredential(models.Model):
    """The secret a connector uses for one system, encrypted at rest. The model never sees it."""

    name = models.CharField(max_length=128, unique=True, validators=[name_validator])
    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="credentials")
    scope = models.CharField(max_length=255, blank=True)
    secret_encrypted = models.TextField(blank=True, editable=False)
    rotation_period_days = models.PositiveIntegerField(default=90)
    rotated_at = models.DateTimeField(null=True, blank=True)
    rotation_failures = models.PositiveSmallIntegerField(default=0)
    last_rotation_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<ServiceCredential {self.name} system={self.system_id}>"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)

    @property
    def rotation_due(self) -> bool:
        if not self.rotation_period_days:
            return False
        if self.rotated_at is None:
            return True
        return self.rotated_at + timedelta(days=self.rotation_period_days) <= timezone.now()

    def set_secret(self, plaintext: str) -> None:
        """Encrypt and keep a new secret; the caller saves."""
        from governance.secrets import backend

        if not plaintext:
            raise ValueError("a service credential secret cannot be empty")
        self.secret_encrypted = backend().store(self.name, plaintext)
        self.rotated_at = timezone.now()

    def reveal(self) -> str:
        """The plaintext, for the connector that uses it. Never log or return it elsewhere."""
        from governance.secrets import backend

        if not self.secret_encrypted:
            raise crypto.SecretUnreadable(f"service credential {self.name!r} has no secret set")
        from governance.secrets import FernetBackend

        store = backend()
        if not isinstance(store, FernetBackend):
            return store.load(self.secret_encrypted)  # a reference: what it points to may change
        # The gateway keeps credentials per process (decision 0015): decrypt each ciphertext once,
        # not on every call. A new secret (rotation, key rotation) is a new ciphertext.
        memo = getattr(self, "_revealed", None)
        if memo is not None and memo[0] == self.secret_encrypted:
            return str(memo[1])
        plaintext = store.load(self.secret_encrypted)
        self._revealed = (self.secret_encrypted, plaintext)
        return plaintext


class ExternalIdentity(models.Model):
    """Who a user is at the identity provider: the issuer and `sub`, never the email alone."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="external_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="external_identity_unique")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class AccessReview(models.Model):
    """Opened for each agent of a workflow whose access map or tiers changed: someone must
    confirm the agent should keep the workflow at its new version, by the deadline."""

    class Status(models.TextChoices):
        OPEN = "open"
        CONFIRMED = "confirmed"
        REVOKED = "revoked"
        EXPIRED = "expired"  # not decided in time: the agent was suspended

    agent = models.ForeignKey(AgentIdentity, on_delete=models.CASCADE, related_name="access_reviews")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="access_reviews")
    from_version = models.PositiveIntegerField()
    to_version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    due_by = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.CharField(max_length=255, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["due_by"]
        indexes = [models.Index(fields=["status", "due_by"], name="access_review_due")]

    def __str__(self) -> str:
        return f"review of {self.agent.name} on {self.workflow.name} v{self.to_version}"


class Campaign(models.Model):
    """A recertification campaign: compliance confirms, agent by agent, that access is still right."""

    class Scope(models.TextChoices):
        ALL = "all"
        OWNER = "owner"
        SYSTEM = "system"

    class OverduePolicy(models.TextChoices):
        REVOKE = "revoke", "revoke the agent's workflows"
        SUSPEND = "suspend", "suspend the agent"

    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.ALL)
    scope_value = models.CharField(max_length=254, blank=True, help_text="the owner's email, or the system's name")
    deadline = models.DateTimeField()
    overdue_policy = models.CharField(max_length=16, choices=OverduePolicy.choices, default=OverduePolicy.SUSPEND)
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class CampaignItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CERTIFIED = "certified"
        REVOKED = "revoked"
        OVERDUE = "overdue"  # not decided by the deadline: the campaign's policy was applied

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    agent = models.ForeignKey(AgentIdentity, on_delete=models.CASCADE, related_name="campaign_items")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    evidence = models.JSONField(default=dict, blank=True, help_text="effective access and usage when decided")
    revoked = models.JSONField(default=list, blank=True, help_text="what was revoked")
    decided_by = models.CharField(max_length=255, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["agent__name"]
        constraints = [models.UniqueConstraint(fields=["campaign", "agent"], name="campaign_item_once")]

    def __str__(self) -> str:
        return f"{self.agent.name} in {self.campaign.name}"


class ApiToken(models.Model):
    """A personal API token for a person (compliance, security) reading the API from scripts."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"


class PolicyVersion(models.Model):
    """One row: a value that changes with every change to the governance configuration, in the
    transaction of that change (governance.versions). Processes key their caches of policy
    (workflow snapshots, service credentials) by it, so a change is seen at once everywhere."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    # Random, not a counter: a change rolled back can never leave behind a value that a later
    # change reuses for a different policy.
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"policy version {self.version}"
