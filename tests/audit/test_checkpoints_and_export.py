from __future__ import annotations

import base64
import csv
import http.server
import io
import json
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from py_ocsf_models.events.base_event import BaseEvent

import audit
from audit import checkpoints, merkle, notes
from audit.chain import verify
from audit.export import iter_csv, iter_jsonl, newest_checkpoint, safe_cell
from audit.models import Checkpoint
from audit.offline import verify_export

pytestmark = pytest.mark.django_db


def append(n: int, **extra) -> None:
    for i in range(n):
        audit.record(
            "action.executed",
            "agent:refund-bot",
            session="s-1",
            workflow="refund-triage",
            system="crm",
            action="crm.get_customer",
            tier=1,
            outcome="succeeded" if i % 3 else "denied",
            details={"i": i, **extra},
        )
    audit.sequence_now()


def test_a_checkpoint_is_a_c2sp_signed_note() -> None:
    append(5)
    checkpoint = Checkpoint.objects.get()
    body, _, signature = checkpoint.note.partition("\n\n")
    origin, size, root = body.split("\n")
    assert (origin, size) == ("warden.local/audit", "5")
    assert base64.b64decode(root).hex() == checkpoint.root_hash
    verifier = notes.verifier()
    dash, name, blob = signature.strip().split(" ")
    raw = base64.b64decode(blob)
    assert (dash, name, raw[:4]) == ("\u2014", "warden.local/audit", verifier.key_id)
    assert len(raw) == 4 + 64
    assert notes.open_checkpoint(checkpoint.note, verifier).size == 5
    # The same note is in the directory, beside every leaf hash.
    assert checkpoints.read_note(5) == checkpoint.note
    assert checkpoints.external_leaf_count() == 5


def test_a_note_signed_by_another_key_or_edited_does_not_open() -> None:
    append(2)
    note = Checkpoint.objects.get().note
    other = notes.Signer("warden.local/audit", notes.load_private_key(base64.b64encode(b"k" * 32).decode()))
    with pytest.raises(notes.NoteError):
        other.verifier.open(note)
    with pytest.raises(notes.NoteError):
        notes.verifier().open(note.replace("\n2\n", "\n3\n"))


def test_the_vkey_round_trips() -> None:
    verifier = notes.verifier()
    name, public = notes.load_public_key(verifier.vkey, "ignored")
    assert (name, public) == (verifier.name, verifier.public)
    with pytest.raises(notes.NoteError):
        notes.load_public_key(verifier.vkey.replace("+", "+0", 1), "x")


def test_the_directory_never_rewrites_a_checkpoint(tmp_path: Path) -> None:
    checkpoints.write_note(3, "a\n", tmp_path)
    checkpoints.write_note(3, "a\n", tmp_path)  # the same note again: a no-op
    with pytest.raises(FileExistsError):
        checkpoints.write_note(3, "b\n", tmp_path)
    assert (tmp_path / "checkpoint.000000000003").read_text() == "a\n"


def test_a_torn_leaf_is_completed_and_whole_leaves_are_kept(tmp_path: Path) -> None:
    leaves = [bytes([i]) * 32 for i in range(4)]
    checkpoints.write_leaves(1, leaves[:2], tmp_path)
    with open(checkpoints.leaves_path(tmp_path), "ab") as handle:
        handle.write(b"\xff" * 7)  # a write cut short by a crash
    checkpoints.write_leaves(1, leaves, tmp_path)
    assert checkpoints.read_leaves(1, 10, tmp_path) == leaves


def test_the_web_tier_starts_without_the_private_key(settings) -> None:
    public = notes.verifier().vkey
    settings.WARDEN_CHECKPOINT_KEY = ""
    settings.WARDEN_CHECKPOINT_PUBLIC_KEY = public
    audit.record("test.event", "system:test")
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="only the audit sequencer needs it"):
        audit.sequence_now()  # sequencing needs the private key; appending and verifying do not
    assert verify().ok


def test_the_jsonl_export_is_valid_ocsf() -> None:
    append(4)
    lines = list(iter_jsonl())
    assert len(lines) == 4
    for line in lines:
        event = json.loads(line)
        BaseEvent.model_validate(event)  # py-ocsf-models: metadata, severity_id, status_id
        assert event["class_uid"] == 6003 and event["type_uid"] == 6003 * 100 + event["activity_id"]
        assert event["metadata"]["product"]["name"] == "Warden" and event["metadata"]["version"] == "1.1.0"
        assert isinstance(event["time"], int) and event["unmapped"]["hash"]
    denied = json.loads(lines[0])
    assert denied["status_id"] == 2 and denied["severity_id"] == 3


def test_the_csv_export_streams_every_event() -> None:
    append(3)
    rows = list(csv.DictReader(io.StringIO("".join(iter_csv()))))
    assert [r["seq"] for r in rows] == ["1", "2", "3"]
    assert json.loads(rows[0]["details"]) == {"i": 0}


@pytest.mark.parametrize("payload", ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_the_csv_export_is_safe_for_spreadsheets(payload: str) -> None:
    audit.record("action.executed", payload, workflow=payload, outcome="ok", details={"note": payload})
    audit.sequence_now()
    rows = list(csv.reader(io.StringIO("".join(iter_csv()))))
    header, row = rows[0], rows[1]
    cells = dict(zip(header, row))
    assert cells["actor"] == "'" + payload and cells["workflow"] == "'" + payload
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    assert safe_cell("plain") == "plain" and safe_cell(-5) == -5


def test_an_export_with_proofs_verifies_offline_with_only_the_checkpoint_and_public_key(tmp_path, capsys) -> None:
    append(6)
    append(7, more=True)
    export = tmp_path / "export.jsonl"
    checkpoint_file = tmp_path / "checkpoint.txt"
    call_command("audit_export", "--proofs", "--checkpoint-out", str(checkpoint_file), stdout=export.open("w"))
    key_file = tmp_path / "warden.vkey"
    key_file.write_text(notes.verifier().vkey + "\n")
    lines = export.read_text().splitlines()
    assert len(lines) == 13 and json.loads(lines[0])["unmapped"]["proof"]["tree_size"] == 13
    # Only the three files: no database is read and no secret is needed.
    result = verify_export(lines, checkpoint_file.read_text(), key_file.read_text())
    assert result.ok and result.complete and result.count == 13
    call_command(
        "audit_verify", "--offline", str(export), "--checkpoint", str(checkpoint_file), "--public-key", str(key_file)
    )
    assert "export OK: 13 events proved against the checkpoint of size 13" in capsys.readouterr().out


def test_an_auditor_runs_offline_verification_with_no_secret_and_no_database(tmp_path) -> None:
    """As README says: on the auditor's machine, with none of Warden's keys or settings."""
    import subprocess
    import sys
    from pathlib import Path

    append(4)
    export = tmp_path / "export.jsonl"
    checkpoint_file = tmp_path / "checkpoint.txt"
    call_command("audit_export", "--proofs", "--checkpoint-out", str(checkpoint_file), stdout=export.open("w"))
    key_file = tmp_path / "warden.vkey"
    key_file.write_text(notes.verifier().vkey + "\n")
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WARDEN_DATA_DIR": str(tmp_path / "data")}
    argv = [sys.executable, "manage.py", "audit_verify", "--offline", str(export)]
    argv += ["--checkpoint", str(checkpoint_file), "--public-key", str(key_file)]
    root = Path(__file__).resolve().parents[2]
    ran = subprocess.run(argv, cwd=root, env=clean, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "export OK: 4 events proved against the checkpoint of size 4" in ran.stdout
    lines = export.read_text().splitlines()
    event = json.loads(lines[1])
    event["unmapped"]["outcome"] = "forged"
    export.write_text("\n".join([lines[0], json.dumps(event), *lines[2:]]) + "\n")
    broken = subprocess.run(argv, cwd=root, env=clean, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "export BROKEN" in broken.stderr
    assert not (tmp_path / "data").exists()  # nothing written on the auditor's machine


def test_offline_verification_names_an_edited_event_and_a_wrong_key(tmp_path, capsys) -> None:
    append(5)
    checkpoint = newest_checkpoint()
    lines = list(iter_jsonl(proofs=checkpoint))
    event = json.loads(lines[2])
    event["unmapped"]["proof"]["entry"]["outcome"] = "forged"
    event["unmapped"]["outcome"] = "forged"
    forged = [*lines[:2], json.dumps(event), *lines[3:]]
    public = base64.b64encode(notes.verifier().public).decode()
    result = verify_export(forged, checkpoint.note, public)
    assert (result.ok, result.first_bad_seq) == (False, 3) and "altered" in result.message
    # The OCSF fields must say what the proved entry says.
    event = json.loads(lines[1])
    event["unmapped"]["outcome"] = "forged"
    result = verify_export([lines[0], json.dumps(event)], checkpoint.note, public)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    wrong = base64.b64encode(b"\x01" * 32).decode()
    assert not verify_export(lines, checkpoint.note, wrong).ok
    export = tmp_path / "e.jsonl"
    export.write_text("\n".join(forged) + "\n")
    note = tmp_path / "c.txt"
    note.write_text(checkpoint.note)
    with pytest.raises(SystemExit) as info:
        call_command("audit_verify", "--offline", str(export), "--checkpoint", str(note), "--public-key", public)
    assert info.value.code == 1 and "export BROKEN at seq 3" in capsys.readouterr().err


def test_audit_proof_prints_a_proof_that_verifies(capsys) -> None:
    append(9)
    call_command("audit_proof", "--seq", "4")
    proof = json.loads(capsys.readouterr().out)
    assert proof["verified"] is True and proof["tree_size"] == 9
    root = notes.open_checkpoint(proof["checkpoint"], notes.verifier()).root
    path = [base64.b64decode(p) for p in proof["inclusion_proof"]]
    assert merkle.verify_inclusion(3, 9, base64.b64decode(proof["leaf_hash"]), path, root)


class _Witness(http.server.BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).received.append(body)
        old = int(body.split("\n", 1)[0].removeprefix("old "))
        if old == 0 and len(type(self).received) == 1:
            self.send_response(409)  # the witness already holds size 2: it says so
            self.send_header("Content-Type", "text/x.tlog.size")
            self.end_headers()
            self.wfile.write(b"2\n")
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"\xe2\x80\x94 witness.example AAAA\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.django_db(transaction=True)
def test_checkpoints_are_posted_to_witnesses_in_the_tlog_witness_shape(settings) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Witness)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Witness.received = []
    try:
        settings.WARDEN_WITNESS_URLS = [f"http://127.0.0.1:{server.server_address[1]}/add-checkpoint"]
        from audit.sequencer import Sequencer

        sequencer = Sequencer(notes.signer())
        audit.record("test.event", "system:test")
        audit.record("test.event", "system:test")
        sequencer.drain()
        deadline = time.monotonic() + 10
        while len(_Witness.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_Witness.received) == 2
        first, retry = _Witness.received
        assert first.startswith("old 0\n\n") and first.endswith(Checkpoint.objects.get().note)
        # After the 409 naming size 2, the retry carries old 2 and (sizes equal) no proof hashes.
        assert retry.startswith("old 2\n\n")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "edit",
    [
        lambda e: e["actor"].update(app_name="system:someone-else"),
        lambda e: e.update(time=e["time"] + 1000, time_dt="2020-01-01T00:00:00+00:00"),
        lambda e: e.update(status="failed", status_id=2),
        lambda e: e.update(message="nothing happened"),
        lambda e: e["metadata"].update(correlation_uid="another-session"),
    ],
)
def test_offline_verification_binds_every_field_a_reader_sees(edit) -> None:
    """Who, when, the status and the message are read from the export: they are checked too."""
    append(3)
    checkpoint = newest_checkpoint()
    lines = list(iter_jsonl(proofs=checkpoint))
    public = base64.b64encode(notes.verifier().public).decode()
    assert verify_export(lines, checkpoint.note, public).ok
    event = json.loads(lines[1])
    edit(event)
    result = verify_export([lines[0], json.dumps(event), lines[2]], checkpoint.note, public)
    assert (result.ok, result.first_bad_seq) == (False, 2)
