"""A trail written by the HMAC chain keeps verifying after the migration to the Merkle log.

Runs in a subprocess on its own SQLite file: the test database is already migrated past 0003.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = r"""
from datetime import UTC, datetime, timedelta

import django

django.setup()
from django.core.management import call_command
from django.db import connection

call_command("migrate", "audit", "0003", verbosity=0)
from audit.chain import _iso, compute_hash

prev = "0" * 64
with connection.cursor() as cursor:
    for seq in range(1, 6):
        at = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=seq)
        fields = {"seq": seq, "at": _iso(at), "kind": "legacy.event", "actor": "user:alice", "session": "",
                  "workflow": "", "system": "", "data_type": "", "action": "", "tier": None, "outcome": "ok",
                  "details": {"i": seq}}
        digest = compute_hash(prev, fields)
        cursor.execute(
            "INSERT INTO audit_auditevent (seq, at, kind, actor, session, workflow, system, data_type, action, tier,"
            " outcome, details, prev_hash, hash) VALUES (%s, %s, 'legacy.event', 'user:alice', '', '', '', '', '',"
            " NULL, 'ok', %s, %s, %s)",
            [seq, at.strftime("%Y-%m-%d %H:%M:%S"), '{"i": %d}' % seq, prev, digest],
        )
        prev = digest
    cursor.execute("UPDATE audit_chainhead SET seq = 5, hash = %s", [prev])

call_command("migrate", verbosity=0)
import audit
from audit.chain import verify
from audit.models import AuditEvent

result = verify()
assert result.ok and result.count == 5, result
audit.record("new.event", "user:bob")
audit.sequence_now()
result = verify()
assert result.ok and (result.count, result.checkpoint_size) == (6, 6), result
assert list(AuditEvent.objects.order_by("seq").values_list("seq", "id")) == [(i, i) for i in range(1, 7)]
with connection.cursor() as cursor:  # the leaf commits to the old HMAC: editing it is caught
    cursor.execute("UPDATE audit_auditevent SET legacy_hmac = %s WHERE seq = 3", ["f" * 64])
result = verify()
assert (result.ok, result.first_bad_seq) == (False, 3), result
print("migrated and verified")
"""


def test_an_hmac_chain_becomes_the_first_leaves_and_keeps_verifying(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/legacy.sqlite3",
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "WARDEN_DATA_DIR": str(tmp_path),
        "WARDEN_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "migrated and verified" in result.stdout
