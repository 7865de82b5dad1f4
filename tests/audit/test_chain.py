from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audit
from audit.chain import verify
from audit.models import AuditEvent, ChainHead
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


def test_it_links_each_event_to_the_previous_one() -> None:
    _append(5)
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:]))
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (5, events[-1].hash)


def test_it_verifies_an_intact_chain() -> None:
    _append(12)
    result = verify(chunk_size=5)
    assert result.ok and result.count == 12 and result.last_seq == 12


def test_it_verifies_an_empty_chain() -> None:
    assert verify().ok


def test_it_rolls_back_the_event_with_the_callers_transaction() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("test.event", "system:test")
        raise RuntimeError("the state change failed")
    assert AuditEvent.objects.count() == 0
    audit.record("test.event", "system:test")
    assert AuditEvent.objects.get().seq == 1
    assert verify().ok


def test_it_refuses_values_it_cannot_hash() -> None:
    with pytest.raises(ValueError):
        audit.record("test.event", "system:test", details={"x": float("nan")})
    with pytest.raises(ValueError):
        audit.record("", "system:test")
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    "column, value",
    [
        ("outcome", "'denied'"),
        ("actor", "'user:mallory'"),
        ("tier", "4"),
        ("details", "'{\"i\": 99}'"),
        ("kind", "'test.other'"),
        ("at", "'2020-01-01 00:00:00'"),
    ],
)
def test_it_names_the_altered_seq(tamper, column: str, value: str) -> None:
    _append(10)
    tamper(f"UPDATE audit_auditevent SET {column} = {value} WHERE seq = 7")
    result = verify()
    assert not result.ok
    assert (result.first_bad_seq, result.problem) == (7, "altered")
    assert result.count == 6


def test_it_names_a_deleted_seq(tamper) -> None:
    _append(10)
    tamper("DELETE FROM audit_auditevent WHERE seq = 4")
    result = verify()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 4, "missing")


def test_it_detects_a_cut_off_tail_against_the_chain_head(tamper) -> None:
    _append(10)
    tamper("DELETE FROM audit_auditevent WHERE seq > 8")
    result = verify()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 9, "missing")


def test_it_names_reordered_rows(tamper) -> None:
    _append(10)
    tamper("UPDATE audit_auditevent SET seq = -1 WHERE seq = 5")
    tamper("UPDATE audit_auditevent SET seq = 5 WHERE seq = 6")
    tamper("UPDATE audit_auditevent SET seq = 6 WHERE seq = -1")
    result = verify()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 5, "reordered")


def test_it_detects_a_forged_event_with_a_guessed_hash(tamper) -> None:
    _append(3)
    last = AuditEvent.objects.get(seq=3)
    tamper(
        "INSERT INTO audit_auditevent (seq, at, kind, actor, session, workflow, system, data_type, action, "
        "tier, outcome, details, prev_hash, hash) VALUES (4, %s, 'test.event', 'x', '', '', '', '', '', NULL, "
        "'', '{}', %s, %s)",
        [last.at, last.hash, "f" * 64],
    )
    tamper("UPDATE audit_chainhead SET seq = 4, hash = %s", ["f" * 64])
    result = verify()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 4, "altered")


def test_audit_verify_command_exits_0_with_the_count(capsys) -> None:
    _append(4)
    call_command("audit_verify")
    assert "audit chain OK: 4 events verified" in capsys.readouterr().out


def test_audit_verify_command_exits_1_naming_the_seq(tamper, capsys) -> None:
    _append(4)
    tamper("UPDATE audit_auditevent SET outcome = 'tampered' WHERE seq = 2")
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "BROKEN at seq 2" in err and "altered" in err


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET prev_hash = 'garbage' WHERE seq = 2",
        "UPDATE audit_auditevent SET hash = '' WHERE seq = 2",
        "UPDATE audit_auditevent SET details = '[1, 2' WHERE seq = 2",
        "UPDATE audit_auditevent SET at = 'not a time' WHERE seq = 2",
    ],
)
def test_audit_verify_reports_malformed_rows_without_crashing(tamper, capsys, sql: str) -> None:
    _append(3)
    try:
        tamper(sql)
    except (DatabaseError, IntegrityError):
        # The column types refuse this corruption outright, so the chain is untouched.
        assert verify().ok
        return
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify")
    assert exit_info.value.code == 1
    assert "BROKEN at seq 2" in capsys.readouterr().err


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
    stored = AuditEvent.objects.get(seq=event.seq).details
    text = str(stored)
    for canary in ("123-45-6789", "987-65-4321", "555-55-5555"):
        assert canary not in text
    assert stored["customer"]["email"] == "a@example.com"
    assert stored["customer"]["ssn"].startswith("fp:")
    # Equal values still correlate.
    again = audit.record("data.read", "agent:bot", details={"ssn": "123-45-6789"})
    assert again.details["ssn"] == stored["customer"]["ssn"]
    assert verify().ok


def test_it_fingerprints_keys_the_caller_marks_sensitive() -> None:
    event = audit.record("test.event", "system:test", details={"token": "s3cret"}, sensitive_keys=["token"])
    assert AuditEvent.objects.get(seq=event.seq).details["token"].startswith("fp:")


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
    with transaction.atomic():
        start = ChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
        for item in details:
            audit.record("test.property", "system:hypothesis", details=item)
        result = verify()
        assert result.ok, result.message
        assert result.last_seq == start + len(details)
        transaction.set_rollback(True)
