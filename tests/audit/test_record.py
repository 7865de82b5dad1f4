"""audit.record(): one lock-free insert in the caller's transaction; seq comes from the sequencer."""

from __future__ import annotations

import tempfile

import pytest
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audit
from audit.chain import verify
from audit.models import AuditEvent, Checkpoint
from governance.models import ContextRule, DataObject, System

pytestmark = pytest.mark.django_db


def _append(n: int) -> None:
    for i in range(n):
        audit.record(
            "test.event",
            "user:alice",
            workflow="refund-triage",
            tier=1 + i % 4,
            outcome="ok",
            details={"i": i, "note": f"event {i}"},
        )


def test_it_inserts_with_a_content_hash_and_no_seq_until_sequenced() -> None:
    _append(3)
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.seq for e in events] == [None, None, None]
    assert len({e.hash for e in events}) == 3 and all(len(e.hash) == 64 for e in events)
    assert audit.sequence_now() == 3
    assert list(AuditEvent.objects.order_by("id").values_list("seq", flat=True)) == [1, 2, 3]
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.tree_size == 3
    assert audit.sequence_now() == 0 and Checkpoint.objects.count() == 1  # nothing new to sign


def test_it_verifies_an_intact_log() -> None:
    _append(12)
    audit.sequence_now()
    result = verify(chunk_size=5)
    assert result.ok and result.count == 12 and result.last_seq == 12


def test_it_verifies_an_empty_log() -> None:
    assert verify().ok


def test_unsequenced_events_are_counted_and_checked() -> None:
    _append(2)
    audit.sequence_now()
    _append(3)
    result = verify()
    assert (result.ok, result.count, result.pending) == (True, 2, 3)


def test_it_rolls_back_the_event_with_the_callers_transaction() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("test.event", "system:test")
        raise RuntimeError("the state change failed")
    assert AuditEvent.objects.count() == 0
    audit.record("test.event", "system:test")
    audit.sequence_now()
    assert AuditEvent.objects.get().seq == 1
    assert verify().ok


def test_it_refuses_values_it_cannot_hash() -> None:
    with pytest.raises(ValueError):
        audit.record("test.event", "system:test", details={"x": float("nan")})
    with pytest.raises(ValueError):
        audit.record("", "system:test")
    assert AuditEvent.objects.count() == 0


def test_it_fingerprints_never_persist_values() -> None:
    crm = System.objects.create(name="crm", connector="demo_crm")
    DataObject.objects.create(name="crm.customer", system=crm, fields={"ssn": "pii.ssn", "email": "pii.email"})
    ContextRule.objects.create(data_type="pii.ssn", handling="never", persist=False)
    event = audit.record(
        "data.read",
        "agent:bot",
        details={
            "customer": {"ssn": "123-45-6789", "email": "a@example.com"},
            "rows": [{"ssn": "987-65-4321"}],
            "pii.ssn": "555-55-5555",
        },
    )
    stored = AuditEvent.objects.get(pk=event.pk).details
    text = str(stored)
    for canary in ("123-45-6789", "987-65-4321", "555-55-5555"):
        assert canary not in text
    assert stored["customer"]["email"] == "a@example.com"
    assert stored["customer"]["ssn"].startswith("fp:")
    # Equal values still correlate.
    again = audit.record("data.read", "agent:bot", details={"ssn": "123-45-6789"})
    assert again.details["ssn"] == stored["customer"]["ssn"]
    audit.sequence_now()
    assert verify().ok


def test_it_fingerprints_keys_the_caller_marks_sensitive() -> None:
    event = audit.record("test.event", "system:test", details={"token": "s3cret"}, sensitive_keys=["token"])
    assert AuditEvent.objects.get(pk=event.pk).details["token"].startswith("fp:")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    details=st.lists(
        st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda s: "\x00" not in s), json_values, max_size=4),
        min_size=1,
        max_size=5,
    )
)
def test_any_json_details_survive_the_database_round_trip(details: list[dict]) -> None:
    # Each example rolls its database back, so it gets its own checkpoint directory too.
    with tempfile.TemporaryDirectory() as folder, override_settings(WARDEN_CHECKPOINT_DIR=folder), transaction.atomic():
        start = AuditEvent.objects.filter(seq__isnull=False).count()
        for item in details:
            audit.record("test.property", "system:hypothesis", details=item)
        audit.sequence_now()
        result = verify()
        assert result.ok, result.message
        assert result.last_seq == start + len(details)
        transaction.set_rollback(True)
