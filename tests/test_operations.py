from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from web.logging import JsonFormatter

ROOT = Path(__file__).resolve().parent.parent


def test_json_logs_scrub_never_persist_values(demo) -> None:
    record = logging.LogRecord("warden", logging.INFO, __file__, 1, "looked up %s", ("C-1001",), None)
    record.ssn = "123-45-6789"
    record.session = "s-1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "looked up C-1001" and line["extra"]["session"] == "s-1"
    assert line["extra"]["ssn"].startswith("fp:") and "123-45-6789" not in json.dumps(line)


def test_deploy_checks_refuse_insecure_settings(tmp_path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST", "DJANGO_")) and k not in ("DATABASE_URL", "CELERY_BROKER_URL")
    }
    env.update(DEBUG="1", WARDEN_DEV_LOGIN="1", WARDEN_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    for code in ("warden.E001", "warden.E002", "warden.E003", "warden.W001"):
        assert code in result.stderr, code


@pytest.mark.django_db
def test_key_and_token_commands(demo) -> None:
    from tests.approvals.conftest import make_user

    out, err = io.StringIO(), io.StringIO()
    call_command("agent_key_create", "refund-bot", stdout=out, stderr=err)
    assert out.getvalue().startswith("wak_") and "cannot show it again" in err.getvalue()
    make_user("carol", "compliance")
    out = io.StringIO()
    call_command("api_token_create", "carol", "--name", "siem", stdout=out, stderr=io.StringIO())
    assert out.getvalue().startswith("wpt_")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no agent identity named 'nobody'"):
        call_command("agent_key_create", "nobody")
