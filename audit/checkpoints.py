"""Signed checkpoints in the database, in an append-only directory, and at witnesses.

The directory (WARDEN_CHECKPOINT_DIR) holds, beside the database and out of its reach:
- `checkpoint.<tree size, 12 digits>`: each signed note, created once and never rewritten;
- `leaves.bin`: the 32-byte leaf hash of every sequenced event, at offset (seq - 1) * 32.
The sequencer writes both only after the database committed them, so the directory is
never ahead of what the database once held: a database with fewer events than the directory
was cut off. The leaves let `audit_verify` name the exact seq that was rewritten.
"""

from __future__ import annotations

import base64
import logging
import os
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from audit import notes
from audit.models import AuditEvent, Checkpoint, LegacyCheckpoint

log = logging.getLogger("warden.audit.checkpoints")
LEAF_BYTES = 32
_PREFIX = "checkpoint."


def directory() -> Path:
    return Path(settings.WARDEN_CHECKPOINT_DIR)


def sign(size: int, root: bytes, signer: notes.Signer) -> Checkpoint:
    """Sign the tree and store the note; called inside the sequencer's transaction."""
    body = notes.CheckpointBody(notes.origin(), size, root).text()
    return Checkpoint.objects.create(
        tree_size=size, root_hash=root.hex(), note=signer.sign(body), signed_at=timezone.now()
    )


# The directory -------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_note(size: int, note: str, where: Path | None = None) -> Path:
    """Create checkpoint.<size> once; an existing one with other contents is an error."""
    folder = where or directory()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{_PREFIX}{size:012d}"
    if final.exists():
        if final.read_text() != note:
            raise FileExistsError(f"{final} exists with another checkpoint: refusing to overwrite it")
        return final
    temp = folder / f".{final.name}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(note)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, final)  # atomic, and fails rather than replace
    except FileExistsError:
        if final.read_text() != note:
            raise
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(folder)
    return final


def leaves_path(where: Path | None = None) -> Path:
    return (where or directory()) / "leaves.bin"


def external_leaf_count(where: Path | None = None) -> int:
    path = leaves_path(where)
    return path.stat().st_size // LEAF_BYTES if path.exists() else 0


def write_leaves(first_seq: int, hashes: list[bytes], where: Path | None = None, *, sync: bool = True) -> None:
    """Write leaves from first_seq on. Only completes the file: it never rewrites a whole leaf.

    `sync=False` leaves the fsync to the next checkpoint's write: a leaf matters to a verifier
    only once a checkpoint covers it, and an fsync per batch would dominate the latency."""
    folder = where or directory()
    folder.mkdir(parents=True, exist_ok=True)
    have = external_leaf_count(folder)
    if first_seq - 1 > have:
        raise ValueError(f"leaves.bin holds {have} leaves; cannot write from seq {first_seq}")
    skip = have - (first_seq - 1)
    data = b"".join(hashes[skip:])
    if not data:
        return
    fd = os.open(leaves_path(folder), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, have * LEAF_BYTES)  # also overwrites a torn trailing partial leaf
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_leaves(first_seq: int, count: int, where: Path | None = None) -> list[bytes]:
    path = leaves_path(where)
    if not path.exists() or count <= 0:
        return []
    with open(path, "rb") as handle:
        handle.seek((first_seq - 1) * LEAF_BYTES)
        data = handle.read(count * LEAF_BYTES)
    return [data[i : i + LEAF_BYTES] for i in range(0, len(data) - LEAF_BYTES + 1, LEAF_BYTES)]


def external_sizes(where: Path | None = None) -> list[int]:
    folder = where or directory()
    if not folder.is_dir():
        return []
    sizes = []
    for entry in os.scandir(folder):
        suffix = entry.name.removeprefix(_PREFIX)
        if entry.name.startswith(_PREFIX) and suffix.isdigit():
            sizes.append(int(suffix))
    return sorted(sizes)


def read_note(size: int, where: Path | None = None) -> str:
    return ((where or directory()) / f"{_PREFIX}{size:012d}").read_text(encoding="utf-8")


@dataclass(frozen=True)
class External:
    size: int
    root: bytes
    note: str


def newest_external(verifier: notes.Verifier, where: Path | None = None) -> External | None:
    """The newest checkpoint in the directory; NoteError if it is forged or malformed."""
    sizes = external_sizes(where)
    if not sizes:
        return None
    note = read_note(sizes[-1], where)
    body = notes.open_checkpoint(note, verifier, notes.origin())
    if body.size != sizes[-1]:
        raise notes.NoteError(f"checkpoint.{sizes[-1]:012d} holds a checkpoint of size {body.size}")
    return External(body.size, body.root, note)


# Witnesses (C2SP tlog-witness add-checkpoint) -------------------------------------------


class Witnesses:
    """Sends the newest checkpoint to each witness from a background thread, so a slow or
    absent witness never holds up sequencing. Only the newest pending note is kept."""

    def __init__(self, urls: list[str], timeout: float) -> None:
        self.urls = urls
        self.timeout = timeout
        self.known: dict[str, int] = dict.fromkeys(urls, 0)
        self.pending: queue.Queue[tuple[int, str]] = queue.Queue(maxsize=1)
        if urls:
            threading.Thread(target=self._run, name="audit-witnesses", daemon=True).start()

    def submit(self, size: int, note: str) -> None:
        if not self.urls:
            return
        try:
            self.pending.get_nowait()
        except queue.Empty:
            pass
        self.pending.put_nowait((size, note))

    def _run(self) -> None:
        while True:
            size, note = self.pending.get()
            for url in self.urls:
                self._send(url, size, note)

    def _send(self, url: str, size: int, note: str, retry: bool = True) -> None:
        from audit import tree

        old = self.known[url]
        if old > size:
            return
        try:
            from django.db import connection

            proof = tree.consistency_proof(old, size) if 0 < old < size else []
            connection.close()
        except Exception:  # noqa: BLE001 - a witness is best effort
            log.warning("audit witness %s: cannot build a consistency proof from %s to %s", url, old, size)
            return
        body = f"old {old}\n" + "".join(base64.b64encode(p).decode() + "\n" for p in proof) + "\n" + note
        request = urllib.request.Request(url, data=body.encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
            self.known[url] = size
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace").strip()
            if exc.code == 409 and retry and text.isdigit():
                self.known[url] = int(text)  # the witness names the size it holds
                self._send(url, size, note, retry=False)
                return
            log.warning("audit witness %s refused checkpoint %s: %s %s", url, size, exc.code, text[:200])
        except (OSError, ValueError) as exc:
            log.warning("audit witness %s unreachable for checkpoint %s: %s", url, size, exc)


# The old HMAC chain's checkpoints ---------------------------------------------------------


def _legacy_message(seq: int, chain_hash: str, signed_at: datetime) -> bytes:
    return f"warden-checkpoint\n{seq}\n{chain_hash}\n{signed_at.isoformat()}".encode()


def verify_legacy_checkpoints(verifier: notes.Verifier) -> Iterator[tuple[int, str]]:
    """(seq, problem) for each checkpoint of the old chain that no longer holds."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(verifier.public)
    for checkpoint in LegacyCheckpoint.objects.order_by("seq").iterator():
        try:
            key.verify(
                base64.b64decode(checkpoint.signature),
                _legacy_message(checkpoint.seq, checkpoint.hash, checkpoint.signed_at),
            )
        except (InvalidSignature, ValueError):
            yield checkpoint.seq, f"the legacy checkpoint at seq {checkpoint.seq} has an invalid signature"
            continue
        stored = AuditEvent.objects.filter(seq=checkpoint.seq).values_list("legacy_hmac", flat=True).first()
        if stored != checkpoint.hash:
            yield checkpoint.seq, f"seq {checkpoint.seq} no longer has the HMAC its legacy checkpoint signed"
