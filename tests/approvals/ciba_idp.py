"""The real oidc-provider with its CIBA feature on (tests/oidc/provider.mjs, CIBA=1), its test
device, and Warden's settings for it: shared by the CIBA tests that talk to it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from approvals import ciba
from approvals.models import CibaRequest
from approvals.tasks import ciba_request_poll as ciba_request_poll_task
from config.celery import app as celery_app
from governance.models import ExternalIdentity
from tests.e2e.conftest import OIDC_DIR, USERS, _free_port


@pytest.fixture(scope="module")
def ciba_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node = shutil.which("node")
    if node is None or not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        pytest.fail("the OIDC provider needs node and `npm ci` in tests/oidc (bin/test does both)")
    folder = tmp_path_factory.mktemp("ciba-idp")
    users, log = folder / "users.json", folder / "provider.log"
    users.write_text(json.dumps(USERS))
    port = _free_port()
    live = f"http://127.0.0.1:{os.environ.get('WARDEN_E2E_PORT', '8931')}"
    proc = subprocess.Popen(
        [node, "provider.mjs"],
        cwd=OIDC_DIR,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "CIBA": "1",
            "PORT": str(port),
            "USERS_FILE": str(users),
            "REDIRECT_URIS": f"{live}/oidc/callback/",
            "POST_LOGOUT_REDIRECT_URIS": f"{live}/accounts/login/",
        },
    )
    deadline = time.monotonic() + 30
    while b"listening" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the OIDC provider did not start:\n{log.read_text()}")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def ciba_settings(settings, ciba_idp: str) -> Any:
    settings.WARDEN_CIBA_ENABLED = True
    settings.WARDEN_CIBA_ISSUER = ciba_idp
    settings.WARDEN_CIBA_CLIENT_ID = "warden"
    settings.WARDEN_CIBA_CLIENT_SECRET = "warden-secret"
    settings.WARDEN_CIBA_CLIENT_AUTH = "client_secret_post"
    settings.WARDEN_CIBA_LOGIN_HINT = "sub"
    settings.WARDEN_CIBA_DEFAULT_INTERVAL = 1  # the provider names no interval; 5 s would only slow the tests
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    ciba._discovered.clear()
    return settings


@pytest.fixture
def eager() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def known_at(idp: str, user: Any, subject: str) -> Any:
    """What a first browser sign-in through the IdP leaves behind (governance.oidc)."""
    ExternalIdentity.objects.get_or_create(user=user, issuer=idp, subject=subject)
    return user


def device(idp: str, user: str) -> list[dict[str, str]]:
    response = requests.get(f"{idp}/test-device/{user}", timeout=5)
    response.raise_for_status()
    return response.json()


def answer_on_device(idp: str, user: str, auth_req_id: str, answer: str) -> None:
    requests.post(f"{idp}/test-device/{user}/{auth_req_id}/{answer}", timeout=5).raise_for_status()


def poll_until_done(cr: CibaRequest, timeout: float = 30) -> CibaRequest:
    """Run the polling task (eagerly) until the IdP's answer is in; a deadline, no fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cr.refresh_from_db()
        if cr.status != CibaRequest.Status.PENDING:
            return cr
        ciba_request_poll_task.apply(args=(cr.pk, cr.polls))
        time.sleep(0.1)
    raise AssertionError(f"the device request is still {cr.status} after {timeout}s")
