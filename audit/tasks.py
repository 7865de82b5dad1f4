from __future__ import annotations

from celery import shared_task

from audit.chain import verify
from audit.models import VerificationRun


@shared_task(ignore_result=True, acks_late=True)
def sequence() -> int:
    """The SQLite quickstart's sequencer: beat runs it every second in the worker.

    In production the `audit_sequencer` process does this; the advisory lock makes a stray
    call here wait for it rather than race it."""
    from audit.sequencer import sequence_now

    return sequence_now()


@shared_task(ignore_result=True, acks_late=True)
def verify_chain(run_id: int) -> None:
    """A verification started from the browser; progress is written as it goes."""
    if not VerificationRun.objects.filter(pk=run_id, status="running", done=0).exists():
        return

    def progress(done: int, total: int) -> None:
        VerificationRun.objects.filter(pk=run_id).update(done=done, total=total)

    try:
        result = verify(progress=progress, chunk_size=5000)
    except Exception as exc:  # noqa: BLE001 - the page shows it; nothing else to undo
        VerificationRun.objects.filter(pk=run_id).update(status="error", message=f"{type(exc).__name__}: {exc}")
        return
    VerificationRun.objects.filter(pk=run_id).update(
        status="ok" if result.ok else "broken",
        done=result.count,
        first_bad_seq=result.first_bad_seq,
        message=result.message or f"{result.count} events verified",
    )
