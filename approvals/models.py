from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from agents.models import ActionRequest


class ApprovalDecision(models.Model):
    """One reviewer's decision on a tier 3 request, bound to the parameter hash they were shown."""

    class Decision(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    action_request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_decisions")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    params_hash = models.CharField(max_length=64)
    auth_context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["action_request", "reviewer"], name="one_decision_per_reviewer")]

    def __str__(self) -> str:
        return f"{self.decision} by {self.reviewer} on {self.action_request_id}"


class CibaRequest(models.Model):
    """One "approve on my device" request (OpenID Connect CIBA, approvals/ciba.py): Warden asked
    the identity provider to authenticate this reviewer about this request, and polls for the
    answer. The decision itself is an ApprovalDecision made through the same service as the web."""

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for the reviewer on their device
        APPROVED = "approved"  # confirmed, the ID token verified, the approval recorded
        DENIED = "denied"  # the reviewer denied on their device: recorded as their rejection
        EXPIRED = "expired"  # no answer before the deadline: no decision
        FAILED = "failed"  # an error or a token that did not verify: no decision (fail closed)

    action_request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="ciba_requests")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ciba_requests")
    params_hash = models.CharField(max_length=64)
    binding_message = models.CharField(max_length=128)
    issuer = models.CharField(max_length=255)
    login_hint = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)  # the `sub` the ID token must carry
    auth_req_id = models.CharField(max_length=512, unique=True)
    nonce = models.CharField(max_length=64)
    interval = models.PositiveIntegerField(default=5)
    polls = models.PositiveIntegerField(default=0)  # claims each poll, so a redelivered task does nothing
    next_poll_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    id_token = models.TextField(blank=True)  # the IdP's signed proof, once verified
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["action_request", "reviewer"],
                condition=models.Q(status="pending"),
                name="one_pending_ciba_request_per_reviewer",
            )
        ]

    def __str__(self) -> str:
        return f"CIBA {self.status} for {self.reviewer} on {self.action_request_id}"
