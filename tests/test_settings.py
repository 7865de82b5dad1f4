"""Settings are safe by default: with DEBUG off, missing keys stop start-up with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "SECRET_KEY",
            "WARDEN_AUDIT_KEY",
            "WARDEN_SECRET_KEYS",
            "WARDEN_CHECKPOINT_KEY",
            "WARDEN_CHECKPOINT_PUBLIC_KEY",
            "DEBUG",
            "DJANGO_SETTINGS_MODULE",
        )
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


CHECKPOINT_KEY = "ZDQ1ZjE2YjM5YTg0NGM4ZmE3ZTlhYzE0NjE3ZDI5MGE="
CHECKPOINT_PUBLIC_KEY = "Y0PobBZoYv/wbwydKGqUfWX6KbxUm2vcIoDGJu44Usc="


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "WARDEN_AUDIT_KEY", "WARDEN_SECRET_KEYS", "WARDEN_CHECKPOINT_PUBLIC_KEY"]
)
def test_a_missing_key_is_a_clear_start_up_error(missing: str, tmp_path) -> None:
    # Web and worker need only the checkpoint public key; the private key is the sequencer's.
    keys = {
        "SECRET_KEY": "s" * 50,
        "WARDEN_AUDIT_KEY": "a" * 40,
        "WARDEN_CHECKPOINT_PUBLIC_KEY": CHECKPOINT_PUBLIC_KEY,
        "WARDEN_SECRET_KEYS": "7kM3p8jkQm1Ot2q2VgqsbFvQ0wq8N9z7dY0mUqjB0tE=",
    }
    del keys[missing]
    result = manage("check", WARDEN_DATA_DIR=str(tmp_path), **keys)
    assert result.returncode == 2
    assert f"configuration error: {missing} is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_only_the_sequencer_needs_the_private_checkpoint_key(tmp_path) -> None:
    keys = {
        "SECRET_KEY": "s" * 50,
        "WARDEN_AUDIT_KEY": "a" * 40,
        "WARDEN_SECRET_KEYS": "7kM3p8jkQm1Ot2q2VgqsbFvQ0wq8N9z7dY0mUqjB0tE=",
        "WARDEN_CHECKPOINT_PUBLIC_KEY": CHECKPOINT_PUBLIC_KEY,
    }
    assert manage("check", WARDEN_DATA_DIR=str(tmp_path), **keys).returncode == 0
    sequencer = manage("audit_sequencer", "--public-key", WARDEN_DATA_DIR=str(tmp_path), **keys)
    assert sequencer.returncode != 0 and "WARDEN_CHECKPOINT_KEY is not set" in sequencer.stderr
    assert "Traceback" not in sequencer.stderr
    wrong = manage(
        "audit_sequencer", "--public-key", WARDEN_DATA_DIR=str(tmp_path), WARDEN_CHECKPOINT_KEY="a" * 43 + "=", **keys
    )
    assert wrong.returncode != 0 and "does not match WARDEN_CHECKPOINT_PUBLIC_KEY" in wrong.stderr
    ok = manage(
        "audit_sequencer", "--public-key", WARDEN_DATA_DIR=str(tmp_path), WARDEN_CHECKPOINT_KEY=CHECKPOINT_KEY, **keys
    )
    assert ok.returncode == 0 and ok.stdout.startswith("warden.local/audit+")


def test_a_key_can_come_from_a_file(tmp_path) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text("a" * 40 + "\n")
    result = manage(
        "check",
        WARDEN_DATA_DIR=str(tmp_path),
        SECRET_KEY="s" * 50,
        WARDEN_AUDIT_KEY_FILE=str(key_file),
        WARDEN_CHECKPOINT_KEY=CHECKPOINT_KEY,
        WARDEN_SECRET_KEYS="7kM3p8jkQm1Ot2q2VgqsbFvQ0wq8N9z7dY0mUqjB0tE=",
    )
    assert result.returncode == 0, result.stderr


def test_a_malformed_database_url_is_a_clear_error(tmp_path) -> None:
    result = manage("check", WARDEN_DATA_DIR=str(tmp_path), DEBUG="1", DATABASE_URL="mongodb://nowhere")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_debug_runs_with_development_keys_and_says_so(tmp_path) -> None:
    result = manage("check", WARDEN_DATA_DIR=str(tmp_path), DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert "development keys" in result.stderr
