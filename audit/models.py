from __future__ import annotations

from django.db import models

GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    """One append-only, hash-chained record. Written only through audit.record()."""

    seq = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=64)
    actor = models.CharField(max_length=255, blank=True)
    session = models.CharField(max_length=64, blank=True)
    workflow = models.CharField(max_length=128, blank=True)
    system = models.CharField(max_length=128, blank=True)
    data_type = models.CharField(max_length=128, blank=True)
    action = models.CharField(max_length=128, blank=True)
    tier = models.SmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=32, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["kind", "seq"], name="audit_kind_seq"),
            models.Index(fields=["session", "seq"], name="audit_session_seq"),
            models.Index(fields=["actor", "seq"], name="audit_actor_seq"),
            models.Index(fields=["workflow", "seq"], name="audit_workflow_seq"),
            models.Index(fields=["system", "seq"], name="audit_system_seq"),
            models.Index(fields=["outcome", "seq"], name="audit_outcome_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} {self.outcome}".strip()


class ChainHead(models.Model):
    """The single row every append locks: it serializes appends so the chain never forks."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_chainhead_singleton")]


class Checkpoint(models.Model):
    """A signed statement of the chain head (seq and hash), made periodically. Signed with an
    Ed25519 key separate from the HMAC key, it proves no tail was cut off after it."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=16)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"checkpoint at seq {self.seq}"


class VerificationRun(models.Model):
    """A chain verification started from the browser, with its progress."""

    started_by = models.CharField(max_length=255)
    started_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, default="running")  # running | ok | broken | error
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    first_bad_seq = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)

    @property
    def percent(self) -> int:
        return 100 if self.status != "running" else (self.done * 100 // self.total if self.total else 0)
