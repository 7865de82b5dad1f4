from __future__ import annotations

from django.db import models
from django.db.models import Q

SEQUENCED = Q(seq__isnull=False)

GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    """One append-only record. Written only through audit.record(), with `hash`, the RFC 6962
    leaf hash of its contents; `seq` stays empty until the sequencer puts it in the tree.

    Events written before the Merkle log (decision 0009) keep their HMAC chain in
    `legacy_prev_hash` and `legacy_hmac`; they are the tree's first leaves.
    """

    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
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
    hash = models.CharField(max_length=64)
    legacy_prev_hash = models.CharField(max_length=64, blank=True, default="")
    legacy_hmac = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["seq"]
        indexes = [
            # The audit browser's filters, which read sequenced events only (audit.search):
            # partial, so that writing an event (on every tool call's path) updates none of
            # them; the sequencer's UPDATE that numbers the event adds it (decision 0022).
            models.Index(fields=["kind", "seq"], condition=SEQUENCED, name="audit_kind_sequenced"),
            models.Index(fields=["actor", "seq"], condition=SEQUENCED, name="audit_actor_sequenced"),
            models.Index(fields=["workflow", "seq"], condition=SEQUENCED, name="audit_workflow_sequenced"),
            models.Index(fields=["system", "seq"], condition=SEQUENCED, name="audit_system_sequenced"),
            models.Index(fields=["outcome", "seq"], condition=SEQUENCED, name="audit_outcome_sequenced"),
            models.Index(fields=["action", "seq"], condition=SEQUENCED, name="audit_action_sequenced"),
            # Whole: a session's events are also read before the sequencer has numbered them.
            models.Index(fields=["session", "seq"], name="audit_session_seq"),
            # What the sequencer reads: the few events not yet in the tree.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="audit_unsequenced"),
        ]

    def __str__(self) -> str:
        where = f"#{self.seq}" if self.seq is not None else f"(pending {self.pk})"
        return f"{where} {self.kind} {self.outcome}".strip()


class TreeNode(models.Model):
    """The hash of a perfect subtree of 2**level leaves, starting at leaf index * 2**level.

    Level 0 (the leaves) lives in AuditEvent.hash; levels above are written by the sequencer
    as they complete, so any proof needs only O(log n) rows.
    """

    pk = models.CompositePrimaryKey("level", "index")
    level = models.SmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64)


class Checkpoint(models.Model):
    """A signed checkpoint of the tree (C2SP tlog-checkpoint in a signed note). Append-only;
    the same note is also written to WARDEN_CHECKPOINT_DIR and sent to witnesses."""

    tree_size = models.BigIntegerField(unique=True)
    root_hash = models.CharField(max_length=64)
    note = models.TextField()
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["-tree_size"]

    def __str__(self) -> str:
        return f"checkpoint of size {self.tree_size}"


class LegacyCheckpoint(models.Model):
    """A checkpoint of the old HMAC chain head (before 0009): still verified, never written."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=16)

    class Meta:
        ordering = ["-seq"]


class VerificationRun(models.Model):
    """A verification started from the browser, with its progress."""

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
