"""A database rewritten behind Warden's back is reported at the exact seq, with exit 1.

The attacker writes SQL directly (the `tamper` fixture disables the PostgreSQL trigger). Cases
where they also recompute the stored hash, delete checkpoints or move the tail are caught
by the checkpoints and leaves kept outside the database.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError

import audit
from audit import checkpoints, merkle
from audit.chain import leaf_hex, verify
from audit.models import AuditEvent, Checkpoint
from audit.verify import _COLUMNS, _read_chunk, row_fields

pytestmark = pytest.mark.django_db


def _append(n: int, sequence: bool = True) -> None:
    for i in range(n):
        audit.record("test.event", "user:alice", workflow="refund-triage", tier=1, outcome="ok", details={"i": i})
    if sequence:
        audit.sequence_now()


def _rehash(tamper, seq: int) -> None:
    """The thorough attacker: after editing a row, store the hash of its new contents."""
    row = _read_chunk(seq - 1, 1)[0]
    assert dict(zip(_COLUMNS, row))["seq"] == seq
    tamper("UPDATE audit_auditevent SET hash = %s WHERE seq = %s", [leaf_hex(row_fields(row)), seq])


def _rebuild_nodes(tamper) -> None:
    """... and rebuild the stored tree over the rewritten events."""
    frontier = merkle.Frontier()
    tamper("DELETE FROM audit_treenode")
    for value in AuditEvent.objects.order_by("seq").values_list("hash", flat=True):
        for level, index, node in frontier.append(bytes.fromhex(value)):
            tamper('INSERT INTO audit_treenode (level, "index", hash) VALUES (%s, %s, %s)', [level, index, node.hex()])


def _broken(**kwargs) -> tuple[int | None, str]:
    result = verify(**kwargs)
    assert not result.ok
    return result.first_bad_seq, result.problem


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
    assert (result.ok, result.first_bad_seq, result.problem, result.count) == (False, 7, "altered", 6)


def test_an_edit_with_a_recomputed_hash_is_caught_by_the_external_leaves(tamper) -> None:
    _append(10)
    tamper("UPDATE audit_auditevent SET outcome = 'denied' WHERE seq = 6")
    _rehash(tamper, 6)
    assert _broken() == (6, "altered")
    # Without the directory the database checkpoint still catches it, at the range it covers.
    assert _broken(external=False) == (1, "altered")


def test_it_names_a_deleted_seq(tamper) -> None:
    _append(10)
    tamper("DELETE FROM audit_auditevent WHERE seq = 4")
    assert _broken() == (4, "missing")


def test_a_deleted_event_with_the_rest_renumbered_is_named(tamper) -> None:
    _append(10)
    tamper("DELETE FROM audit_auditevent WHERE seq = 4")
    for seq in range(5, 11):
        tamper("UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [seq - 1, seq])
    assert _broken() == (4, "reordered")


def test_it_names_reordered_rows(tamper) -> None:
    _append(10)
    tamper("UPDATE audit_auditevent SET seq = -1 WHERE seq = 5")
    tamper("UPDATE audit_auditevent SET seq = 5 WHERE seq = 9")
    tamper("UPDATE audit_auditevent SET seq = 9 WHERE seq = -1")
    assert _broken() == (5, "reordered")
    assert _broken(external=False) == (1, "altered")


def test_a_cut_off_tail_is_caught_by_the_checkpoint(tamper) -> None:
    _append(10)
    tamper("DELETE FROM audit_auditevent WHERE seq > 8")
    assert _broken() == (9, "missing")


def test_a_cut_off_tail_with_its_checkpoints_deleted_is_caught_outside_the_database(tamper, capsys) -> None:
    _append(6)
    _append(4)  # a second checkpoint, of size 10
    tamper("DELETE FROM audit_auditevent WHERE seq > 6")
    tamper("DELETE FROM audit_checkpoint WHERE tree_size > 6")
    # Everything left in the database agrees with itself ...
    assert verify(external=False).ok
    # ... but the directory holds the checkpoint of size 10 and every leaf.
    assert _broken() == (7, "missing")
    with pytest.raises(SystemExit) as info:
        call_command("audit_verify")
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "BROKEN at seq 7" in err and "checkpoint directory" in err


def test_a_deleted_checkpoint_is_named(tamper) -> None:
    _append(3)
    _append(2)
    tamper("DELETE FROM audit_checkpoint WHERE tree_size = 5")
    assert _broken() == (5, "checkpoint")


def test_a_forged_checkpoint_in_the_database_is_named(tamper) -> None:
    _append(4)
    tamper("UPDATE audit_checkpoint SET note = replace(note, '\n4\n', '\n3\n'), tree_size = 3")
    assert _broken(external=False) == (3, "checkpoint")


def test_a_forged_external_checkpoint_is_reported(settings, tmp_path) -> None:
    _append(3)
    folder = checkpoints.directory()
    note = (folder / "checkpoint.000000000003").read_text()
    (folder / "checkpoint.000000000004").write_text(note.replace("\n3\n", "\n4\n"))
    seq, problem = _broken()
    assert problem == "checkpoint"


def test_a_self_consistent_rewrite_is_caught_by_the_external_checkpoint_alone(tamper) -> None:
    _append(4)
    # The attacker edits an event, recomputes its hash and deletes every checkpoint in the
    # database; the directory has lost its leaves (say, only checkpoints were shipped off).
    tamper("UPDATE audit_auditevent SET actor = 'user:mallory' WHERE seq = 2")
    _rehash(tamper, 2)
    _rebuild_nodes(tamper)
    tamper("DELETE FROM audit_checkpoint")
    checkpoints.leaves_path().unlink()
    assert verify(external=False).ok
    result = verify()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 1, "altered")
    assert "checkpoint of size 4" in result.message


def test_the_sequencer_refuses_a_database_shorter_than_the_directory(tamper) -> None:
    from audit.notes import signer
    from audit.sequencer import Sequencer, SequencerHalted

    _append(5)
    tamper("DELETE FROM audit_auditevent WHERE seq > 3")
    with pytest.raises(SequencerHalted, match="records 5 events but the database holds 3"):
        Sequencer(signer()).check_external()


def test_it_detects_a_forged_event_with_a_guessed_hash(tamper) -> None:
    _append(3)
    last = AuditEvent.objects.get(seq=3)
    tamper(
        "INSERT INTO audit_auditevent (seq, at, kind, actor, session, workflow, system, data_type, action, "
        "tier, outcome, details, hash, legacy_prev_hash, legacy_hmac) VALUES (4, %s, 'test.event', 'x', '', '', "
        "'', '', '', NULL, '', '{}', %s, '', '')",
        [last.at, "f" * 64],
    )
    assert _broken() == (4, "altered")


def test_an_unsequenced_event_edited_before_sequencing_is_reported(tamper) -> None:
    _append(2)
    _append(1, sequence=False)
    tamper("UPDATE audit_auditevent SET outcome = 'forged' WHERE seq IS NULL")
    result = verify()
    assert not result.ok and "not yet sequenced" in result.message


def test_audit_verify_command_exits_0_with_the_count(capsys) -> None:
    _append(4)
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "audit log OK: 4 events verified" in out and "external checkpoint 4 consistent" in out


def test_audit_verify_command_exits_1_naming_the_seq(tamper, capsys) -> None:
    _append(4)
    tamper("UPDATE audit_auditevent SET outcome = 'tampered' WHERE seq = 2")
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify", "--checkpoints")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "BROKEN at seq 2" in err and "altered" in err


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET hash = 'garbage' WHERE seq = 2",
        "UPDATE audit_auditevent SET hash = '' WHERE seq = 2",
        "UPDATE audit_auditevent SET details = '[1, 2' WHERE seq = 2",
        "UPDATE audit_auditevent SET at = 'not a time' WHERE seq = 2",
        "UPDATE audit_auditevent SET legacy_hmac = 'x' WHERE seq = 2",
    ],
)
def test_audit_verify_reports_malformed_rows_without_crashing(tamper, capsys, sql: str) -> None:
    _append(3)
    try:
        tamper(sql)
    except (DatabaseError, IntegrityError):
        # The column types refuse this corruption outright, so the log is untouched.
        assert verify().ok
        return
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify")
    assert exit_info.value.code == 1
    assert "BROKEN at seq 2" in capsys.readouterr().err


def test_a_damaged_tree_node_fails_the_consistency_check(tamper, capsys) -> None:
    _append(3)
    _append(5)
    tamper('UPDATE audit_treenode SET hash = %s WHERE level = 1 AND "index" = 0', ["0" * 64])
    with pytest.raises(SystemExit):
        call_command("audit_verify", "--consistency", "3", "8")
    assert "does not extend" in capsys.readouterr().err
    assert _broken() == (1, "altered")


def test_consistency_between_two_checkpoints_is_proved(capsys) -> None:
    _append(3)
    _append(5)
    call_command("audit_verify", "--consistency", "3", "8")
    assert "the checkpoint of size 8 extends the checkpoint of size 3" in capsys.readouterr().out
    assert Checkpoint.objects.count() == 2


def test_an_unreadable_external_checkpoint_is_reported_not_raised(capsys) -> None:
    _append(2)
    (checkpoints.directory() / "checkpoint.000000000009").write_bytes(b"\xff\xfe not a note")
    assert _broken() == (None, "checkpoint")
    with pytest.raises(SystemExit) as info:
        call_command("audit_verify")
    assert info.value.code == 1 and "external checkpoint is invalid" in capsys.readouterr().err
