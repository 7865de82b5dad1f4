"""Checkpoints as C2SP signed notes, and the Ed25519 keys that sign and verify them.

A checkpoint (C2SP tlog-checkpoint) is the text

    <origin>\\n<tree size>\\n<base64 root hash>\\n

signed as a C2SP signed-note: a blank line, then `— <key name> <base64(key id || signature)>`,
where the key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key). Any
tlog tool (Go's golang.org/x/mod/sumdb/note, Sigsum, witnesses) reads the same bytes.

Only the sequencer loads the private key (`signer()`); everything else calls `verifier()`,
which needs only WARDEN_CHECKPOINT_PUBLIC_KEY.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALG_ED25519 = b"\x01"
DASH = "\u2014"
_VKEY = re.compile(r"^[^+\s]+\+[0-9a-fA-F]{8}\+")


class NoteError(ValueError):
    """A note or checkpoint that cannot be parsed or whose signature does not verify."""


def load_private_key(material: str) -> Ed25519PrivateKey:
    """32 bytes in base64, or PEM."""
    try:
        raw = base64.b64decode(material.strip(), validate=True)
        if len(raw) == 32:
            return Ed25519PrivateKey.from_private_bytes(raw)
        key = serialization.load_pem_private_key(material.encode(), password=None)
    except (ValueError, binascii.Error):
        raise ImproperlyConfigured(
            "WARDEN_CHECKPOINT_KEY must be an Ed25519 private key: 32 bytes in base64, or PEM"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("WARDEN_CHECKPOINT_KEY must be an Ed25519 key")
    return key


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + public).digest()[:4]


def vkey(name: str, public: bytes) -> str:
    """The verifier key in the signed-note text form: name+hex key id+base64(0x01 || key)."""
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(ALG_ED25519 + public).decode()}"


def load_public_key(material: str, default_name: str) -> tuple[str, bytes]:
    """(key name, raw public key) from a vkey, 32 bytes in base64, or PEM."""
    text = material.strip()
    if _VKEY.match(text):
        name, hex_id, encoded = text.split("+", 2)  # base64 may hold "+", a name may not
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError("the verifier key's key part is not base64") from None
        if len(blob) != 33 or blob[:1] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key")
        if key_id(name, blob[1:]).hex() != hex_id.lower():
            raise NoteError("the verifier key's id does not match its name and key")
        return name, blob[1:]
    try:
        raw = base64.b64decode(text, validate=True)
        if len(raw) == 32:
            return default_name, raw
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, binascii.Error):
        raise NoteError("a public key must be a vkey, 32 bytes in base64, or PEM") from None
    if not isinstance(key, Ed25519PublicKey):
        raise NoteError("the public key is not an Ed25519 key")
    return default_name, raw_public(key)


@dataclass(frozen=True)
class Verifier:
    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public)

    @property
    def vkey(self) -> str:
        return vkey(self.name, self.public)

    def open(self, note: str) -> str:
        """The note's body if it carries a valid signature by this key; NoteError otherwise."""
        body, sep, signatures = note.partition("\n\n")
        if not sep or not body:
            raise NoteError("not a signed note: no blank line between text and signatures")
        body += "\n"
        key = Ed25519PublicKey.from_public_bytes(self.public)
        for line in signatures.splitlines():
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != DASH or parts[1] != self.name:
                continue
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except (ValueError, binascii.Error):
                continue
            if blob[:4] != self.key_id:
                continue
            try:
                key.verify(blob[4:], body.encode())
            except InvalidSignature:
                raise NoteError(f"the signature by {self.name} is not valid") from None
            return body
        raise NoteError(f"the note carries no signature by {self.name} ({self.key_id.hex()})")


@dataclass(frozen=True)
class Signer:
    name: str
    key: Ed25519PrivateKey

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, raw_public(self.key.public_key()))

    def sign(self, body: str) -> str:
        if not body.endswith("\n") or "\n\n" in body:
            raise ValueError("a note's text ends with one newline and has no blank lines")
        signature = self.key.sign(body.encode())
        blob = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{body}\n{DASH} {self.name} {blob}\n"


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, body: str) -> CheckpointBody:
        lines = body.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint has an origin, a size and a root hash, each on its own line")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not origin or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise NoteError("the checkpoint's origin or size is malformed")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError("the checkpoint's root hash is not base64") from None
        if len(root) != 32:
            raise NoteError("the checkpoint's root hash is not 32 bytes")
        return cls(origin, int(size_text), root)


def open_checkpoint(note: str, verifier: Verifier, origin: str | None = None) -> CheckpointBody:
    """Verify a signed checkpoint and return its body; NoteError when it does not hold."""
    body = CheckpointBody.parse(verifier.open(note))
    if origin is not None and body.origin != origin:
        raise NoteError(f"the checkpoint is for log {body.origin!r}, not {origin!r}")
    return body


def origin() -> str:
    return settings.WARDEN_CHECKPOINT_ORIGIN


@lru_cache(maxsize=4)
def _verifier(material: str, name: str) -> Verifier:
    try:
        key_name, public = load_public_key(material, name)
    except NoteError as exc:
        raise ImproperlyConfigured(f"WARDEN_CHECKPOINT_PUBLIC_KEY: {exc}") from None
    return Verifier(key_name, public)


def verifier() -> Verifier:
    return _verifier(settings.WARDEN_CHECKPOINT_PUBLIC_KEY, origin())


@lru_cache(maxsize=4)
def _signer(material: str, name: str) -> Signer:
    return Signer(name, load_private_key(material))


def signer() -> Signer:
    """The signing key. Only the sequencer calls this; it refuses to start without it."""
    material = settings.WARDEN_CHECKPOINT_KEY
    if not material:
        raise ImproperlyConfigured("WARDEN_CHECKPOINT_KEY is not set: only the audit sequencer needs it")
    made = _signer(material, verifier().name)
    if made.verifier.public != verifier().public:
        raise ImproperlyConfigured("WARDEN_CHECKPOINT_KEY does not match WARDEN_CHECKPOINT_PUBLIC_KEY")
    return made
