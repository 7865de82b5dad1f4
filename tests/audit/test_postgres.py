"""PostgreSQL-only guarantees of the audit trail: no forks under concurrency, append-only table."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

import audit
from audit.chain import verify
from audit.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.integration]


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_writers_leave_one_unbroken_chain() -> None:
    writers, per_writer = 8, 500
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(per_writer):
                audit.record("test.concurrent", f"system:writer-{n}", details={"i": i})
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    result = verify()
    assert result.ok, result.message
    assert result.count == writers * per_writer == 4000
    seqs = list(AuditEvent.objects.values_list("seq", flat=True))
    assert seqs == list(range(1, 4001))
    per_actor = {a: AuditEvent.objects.filter(actor=a).count() for a in {f"system:writer-{n}" for n in range(8)}}
    assert set(per_actor.values()) == {per_writer}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET outcome = 'rewritten'",
        "DELETE FROM audit_auditevent",
    ],
)
def test_the_trigger_refuses_update_and_delete(sql: str) -> None:
    audit.record("test.event", "system:test", outcome="ok")
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.get().outcome == "ok"
    assert verify().ok


@pytest.mark.django_db
def test_the_orm_cannot_delete_events_either() -> None:
    audit.record("test.event", "system:test")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1
