"""The sequencer: gives committed events their `seq`, integrates them into the Merkle tree,
and signs checkpoints. One runs at a time (`manage.py audit_sequencer`).

Each batch is one transaction: it takes the advisory lock (PostgreSQL; SQLite's write lock
does the same), reads the tree size, picks up to N events without a seq in id order,
assigns the next seqs, stores the perfect subtrees they complete and, at most once per
interval, a signed checkpoint. A sequencer killed mid-batch rolls the whole batch back, so
nothing is lost or doubled; the events are picked up again by the next batch.

Why this gives commit order: an event is only visible to the sequencer once its writer's
transaction committed, and the sequencer numbers what it sees after everything it saw
before. An event that commits late (an id lower than events already sequenced) simply gets
a later seq. Nothing ever waits for a "gap" in ids to fill (decision 0009).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from prometheus_client import Counter, Gauge, Histogram

from audit import checkpoints, merkle, notes, tree
from audit.models import AuditEvent, Checkpoint, TreeNode

log = logging.getLogger("warden.audit.sequencer")

ADVISORY_KEY = 0x5741_5244_454E  # "WARDEN"
_EVENTS = AuditEvent._meta.db_table
_NODES = TreeNode._meta.db_table

SEQUENCED = Counter("warden_audit_sequenced_total", "Events given a seq by this sequencer")
BATCH_SECONDS = Histogram(
    "warden_audit_sequencer_batch_seconds",
    "Time of one sequencer batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
FAILING = Gauge("warden_audit_sequencer_failing", "1 while the sequencer cannot write")


class SequencerHalted(RuntimeError):
    """The database and the external log disagree: sequencing would bury the evidence."""


@dataclass(frozen=True)
class BatchResult:
    sequenced: int
    tree_size: int
    checkpoint: Checkpoint | None
    committed_at: float = 0.0  # time.time() when the batch's transaction committed


def _lock(cursor: object) -> None:
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_KEY])  # type: ignore[attr-defined]


def _assign(cursor: object, ids: list[int], seqs: list[int]) -> None:
    if connection.vendor == "postgresql":
        cursor.execute(  # type: ignore[attr-defined]
            f"UPDATE {_EVENTS} AS e SET seq = v.seq FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, seq) "
            "WHERE e.id = v.id AND e.seq IS NULL",
            [ids, seqs],
        )
    else:
        cursor.executemany(  # type: ignore[attr-defined]
            f"UPDATE {_EVENTS} SET seq = %s WHERE id = %s AND seq IS NULL", list(zip(seqs, ids))
        )
    if cursor.rowcount != len(ids) and connection.vendor == "postgresql":  # type: ignore[attr-defined]
        raise RuntimeError("another writer sequenced events in this batch: rolling back")


def _store_nodes(cursor: object, made: list[tuple[int, int, bytes]]) -> None:
    if not made:
        return
    if connection.vendor == "postgresql":
        cursor.execute(  # type: ignore[attr-defined]
            f'INSERT INTO {_NODES} (level, "index", hash) '
            "SELECT * FROM unnest(%s::smallint[], %s::bigint[], %s::varchar[])",
            [[m[0] for m in made], [m[1] for m in made], [m[2].hex() for m in made]],
        )
    else:
        cursor.executemany(  # type: ignore[attr-defined]
            f'INSERT INTO {_NODES} (level, "index", hash) VALUES (%s, %s, %s)',
            [(level, index, value.hex()) for level, index, value in made],
        )


class Sequencer:
    def __init__(
        self,
        signer: notes.Signer,
        *,
        batch: int | None = None,
        checkpoint_interval: float = 1.0,
        external: bool = True,
    ) -> None:
        self.signer = signer
        self.batch = batch or settings.WARDEN_SEQUENCER_BATCH
        self.checkpoint_interval = checkpoint_interval
        self.external = external
        self.witnesses = checkpoints.Witnesses(settings.WARDEN_WITNESS_URLS, settings.WARDEN_WITNESS_TIMEOUT)
        self._frontier: merkle.Frontier | None = None
        self._last_signed = float("-inf")  # the first batch signs
        self._signed_size = -1

    def check_external(self) -> None:
        """Refuse to extend a database that holds fewer events than the directory recorded."""
        if not self.external:
            return
        size = AuditEvent.objects.filter(seq__isnull=False).count()
        newest = checkpoints.newest_external(self.signer.verifier)
        recorded = max(checkpoints.external_leaf_count(), newest.size if newest else 0)
        if recorded > size:
            raise SequencerHalted(
                f"the checkpoint directory records {recorded} events but the database holds {size}: "
                "the database was cut off or replaced. Run audit_verify; sequencing stopped."
            )

    def run_batch(self, *, force_checkpoint: bool = False) -> BatchResult:
        started = time.perf_counter()
        made: list[tuple[int, int, bytes]] = []
        new_leaves: list[bytes] = []
        signed: Checkpoint | None = None
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                _lock(cursor)
                cursor.execute(f"SELECT max(seq) FROM {_EVENTS}")
                size = cursor.fetchone()[0] or 0
                cached = self._frontier
                frontier = (
                    merkle.Frontier(size, [v for _, v in cached.stack])
                    if cached and cached.size == size
                    else tree.frontier(size)
                )
                cursor.execute(f"SELECT id, hash FROM {_EVENTS} WHERE seq IS NULL ORDER BY id LIMIT %s", [self.batch])
                rows = cursor.fetchall()
                for _, value in rows:
                    leaf = bytes.fromhex(value)
                    new_leaves.append(leaf)
                    made.extend(frontier.append(leaf))
                if rows:
                    _assign(cursor, [r[0] for r in rows], list(range(size + 1, size + 1 + len(rows))))
                    _store_nodes(cursor, made)
                newest = Checkpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True).first() or 0
                due = force_checkpoint or time.monotonic() - self._last_signed >= self.checkpoint_interval
                if frontier.size > newest and due:
                    signed = checkpoints.sign(frontier.size, frontier.root(), self.signer)
        except BaseException:
            self._frontier = None  # what the database holds is unknown: re-read it next time
            raise
        committed_at = time.time()
        self._frontier = frontier
        if signed is not None:
            self._last_signed = time.monotonic()
        self._signed_size = signed.tree_size if signed is not None else newest
        if rows:
            SEQUENCED.inc(len(rows))
        if self.external and (new_leaves or signed):
            self._publish(size + 1, new_leaves, signed)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return BatchResult(len(rows), frontier.size, signed, committed_at)

    def _publish(self, first_seq: int, leaves: list[bytes], signed: Checkpoint | None) -> None:
        have = checkpoints.external_leaf_count()
        if have < first_seq - 1:  # behind after a crash between commit and write: catch up
            missing = (
                AuditEvent.objects.filter(seq__gt=have, seq__lt=first_seq)
                .order_by("seq")
                .values_list("hash", flat=True)
            )
            checkpoints.write_leaves(have + 1, [bytes.fromhex(h) for h in missing], sync=False)
        # The leaves reach the disk before the checkpoint that covers them (fsync on signing).
        checkpoints.write_leaves(first_seq, leaves, sync=signed is not None)
        if signed is None:
            return
        checkpoints.write_note(signed.tree_size, signed.note)
        self.witnesses.submit(signed.tree_size, signed.note)

    def _work_waiting(self) -> bool:
        """One cheap query while idle (the partial index holds only unsequenced events), so a
        sequencer polling every few milliseconds costs the database next to nothing."""
        if self._frontier is None:
            return True
        unsigned = self._frontier.size > self._signed_size
        if unsigned and time.monotonic() - self._last_signed >= self.checkpoint_interval:
            return True
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {_EVENTS} WHERE seq IS NULL)")
            return bool(cursor.fetchone()[0])

    def drain(self) -> int:
        """Sequence everything committed so far and sign the result; returns how many."""
        total = 0
        while True:
            result = self.run_batch()
            total += result.sequenced
            if result.sequenced < self.batch:
                break
        return total + self.run_batch(force_checkpoint=True).sequenced  # sign what is still unsigned

    def run(self, stop: threading.Event, poll: float | None = None) -> None:
        """The daemon loop. A failing batch raises an alert, backs off and retries: appends
        keep committing meanwhile and are sequenced once the database takes writes again."""
        poll = settings.WARDEN_SEQUENCER_POLL_MS / 1000 if poll is None else poll
        backoff = 0.0
        while not stop.is_set():
            try:
                if not self._work_waiting():
                    stop.wait(poll)
                    continue
                result = self.run_batch()
            except SequencerHalted:
                FAILING.set(1)
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: alert, retry, never die quietly
                FAILING.set(1)
                backoff = min(5.0, backoff * 2 or 0.1)
                log.critical(
                    "ALERT audit sequencer cannot write (%s: %s); retrying in %.1fs", type(exc).__name__, exc, backoff
                )
                connection.close()
                stop.wait(backoff)
                continue
            if backoff:
                log.warning("audit sequencer recovered")
                backoff = 0.0
            FAILING.set(0)
            if result.sequenced < self.batch:
                stop.wait(poll)


def sequence_now() -> int:
    """Sequence and sign everything committed so far, in this process (tests, the SQLite
    quickstart's beat task). Returns how many events it sequenced."""
    sequencer = Sequencer(notes.signer())
    return sequencer.drain()


def lag() -> tuple[int, float]:
    """(events waiting for a seq, age in seconds of the oldest one)."""
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), min(at) FROM {_EVENTS} WHERE seq IS NULL")
        count, oldest = cursor.fetchone()
    if not count:
        return 0, 0.0
    if isinstance(oldest, str):  # SQLite returns the stored text
        from datetime import UTC

        from django.utils.dateparse import parse_datetime

        parsed = parse_datetime(oldest)
        oldest = timezone.make_aware(parsed, UTC) if parsed and timezone.is_naive(parsed) else parsed
    return count, max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
