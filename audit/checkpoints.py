"""Signed checkpoints of the chain head.

The HMAC chain shows edits, deletions and reordering, but an attacker who can write the
database could cut off the tail and move the chain head back. A checkpoint signs (seq, hash)
with an Ed25519 key kept apart from the HMAC key (WARDEN_CHECKPOINT_KEY); verification then
demands that every checkpointed event still exists with the signed hash.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from audit.models import AuditEvent, ChainHead, Checkpoint


@lru_cache(maxsize=2)
def _private_key(material: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(material, validate=True)
        if len(raw) == 32:
            return Ed25519PrivateKey.from_private_bytes(raw)
        key = serialization.load_pem_private_key(material.encode(), password=None)
    except ValueError:
        raise ImproperlyConfigured(
            "WARDEN_CHECKPOINT_KEY must be an Ed25519 private key: 32 bytes in base64, or PEM"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("WARDEN_CHECKPOINT_KEY must be an Ed25519 key")
    return key


def public_key() -> Ed25519PublicKey:
    return _private_key(settings.WARDEN_CHECKPOINT_KEY).public_key()


def key_id() -> str:
    raw = public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _message(seq: int, chain_hash: str, signed_at: datetime) -> bytes:
    return f"warden-checkpoint\n{seq}\n{chain_hash}\n{signed_at.isoformat()}".encode()


def create_checkpoint() -> Checkpoint | None:
    """Sign the current chain head; None when the chain is empty or unchanged since the last one."""
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    if head is None or head[0] == 0:
        return None
    last = Checkpoint.objects.order_by("-seq").first()
    if last is not None and last.seq == head[0]:
        return None
    signed_at = timezone.now()
    signature = _private_key(settings.WARDEN_CHECKPOINT_KEY).sign(_message(head[0], head[1], signed_at))
    return Checkpoint.objects.create(
        seq=head[0], hash=head[1], signed_at=signed_at, key_id=key_id(), signature=base64.b64encode(signature).decode()
    )


@dataclass(frozen=True)
class CheckpointResult:
    ok: bool
    checked: int
    message: str = ""
    first_bad_seq: int | None = None


def verify_checkpoints() -> CheckpointResult:
    key = public_key()
    checked = 0
    for checkpoint in Checkpoint.objects.order_by("seq").iterator():
        try:
            key.verify(
                base64.b64decode(checkpoint.signature), _message(checkpoint.seq, checkpoint.hash, checkpoint.signed_at)
            )
        except (InvalidSignature, ValueError):
            return CheckpointResult(
                False,
                checked,
                f"checkpoint at seq {checkpoint.seq}: the signature is not valid for key {key_id()}",
                checkpoint.seq,
            )
        stored = AuditEvent.objects.filter(seq=checkpoint.seq).values_list("hash", flat=True).first()
        if stored is None:
            last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
            return CheckpointResult(
                False,
                checked,
                f"missing: a checkpoint signed at {checkpoint.signed_at.isoformat()} "
                f"covers seq {checkpoint.seq}, but the chain ends at seq {last}: its tail was cut off",
                last + 1,
            )
        if stored != checkpoint.hash:
            return CheckpointResult(
                False,
                checked,
                f"altered: seq {checkpoint.seq} no longer has the hash its checkpoint signed",
                checkpoint.seq,
            )
        checked += 1
    return CheckpointResult(True, checked)
