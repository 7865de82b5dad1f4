from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from py_ocsf_models.events.base_event import BaseEvent

import audit
from audit.checkpoints import create_checkpoint, verify_checkpoints
from audit.export import iter_csv, iter_jsonl
from audit.models import Checkpoint

pytestmark = pytest.mark.django_db


def append(n: int) -> None:
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
            details={"i": i},
        )


def test_a_truncated_tail_after_a_checkpoint_is_detected(tamper, capsys) -> None:
    append(10)
    checkpoint = create_checkpoint()
    assert checkpoint.seq == 10 and create_checkpoint() is None  # nothing new to sign
    assert verify_checkpoints().ok
    # The attacker cuts off the tail and moves the chain head back, so the chain alone still holds.
    from audit.models import AuditEvent

    new_head = AuditEvent.objects.get(seq=8)
    tamper("DELETE FROM audit_auditevent WHERE seq > 8")
    tamper("UPDATE audit_chainhead SET seq = 8, hash = %s", [new_head.hash])
    call_command("audit_verify")
    assert "audit chain OK: 8 events" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        call_command("audit_verify", "--checkpoints")
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "BROKEN at seq 9" in err and "covers seq 10, but the chain ends at seq 8" in err


def test_a_forged_checkpoint_is_detected(tamper) -> None:
    append(3)
    checkpoint = create_checkpoint()
    Checkpoint.objects.filter(pk=checkpoint.pk).update(seq=2)
    result = verify_checkpoints()
    assert not result.ok and "signature is not valid" in result.message


def test_checkpoints_pass_on_an_intact_chain(capsys) -> None:
    append(5)
    create_checkpoint()
    append(2)
    create_checkpoint()
    call_command("audit_verify", "--checkpoints")
    assert "2 signed checkpoints hold" in capsys.readouterr().out


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
