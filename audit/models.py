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
