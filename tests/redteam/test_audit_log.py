"""The audit log against the runtime database role (README, Security model: "The app cannot
switch that off ... the runtime role ... has only SELECT, INSERT on the audit tables (plus
UPDATE of the events' seq column, which the sequencer sets once and the trigger never lets
change), so it can neither disable the append-only trigger nor rewrite, delete or truncate
events")."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

import audit
from audit.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_only_the_sequencer_gives_a_pending_event_its_seq() -> None:
    """The trigger lets any connection set a pending event's seq once, to any value, and
    UPDATE of `seq` is a grant the runtime role holds. One UPDATE from a compromised app
    (seq = 10**9 on a pending event) and the sequencer stops for good (TreeDataMissing on every
    batch): nothing recorded afterwards is ever sequenced or checkpointed, and no role short of
    a trigger bypass can undo it. audit_verify does report a gap, but the log no longer grows."""
    for i in range(3):
        audit.record("test.before", "system:test", details={"i": i})
    audit.sequence_now()
    audit.record("approval.decided", "user:mallory", outcome="approve", details={"what": "the incriminating one"})
    try:
        with transaction.atomic(), connection.cursor() as cursor:  # no trigger bypass: the runtime role may do this
            cursor.execute(
                "UPDATE audit_auditevent SET seq = 1000000000 WHERE seq IS NULL AND kind = 'approval.decided'"
            )
    except DatabaseError:
        return  # refused: only the sequencer (holding its lock, at the next position) assigns seq
    for i in range(3):
        audit.record("test.after", "system:test", details={"i": i})
    try:
        audit.sequence_now()
    except Exception as exc:  # noqa: BLE001 - the assertion below says what it means
        pytest.fail(f"one UPDATE by the runtime role stopped the sequencer: {type(exc).__name__}: {exc}")
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()
