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
