"""Browser tests: real Chromium (Playwright) against the live server, and a real OpenID
Connect provider (node-oidc-provider, tests/oidc/provider.mjs) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
OIDC_DIR = ROOT / "tests" / "oidc"
LIVE_PORT = int(os.environ.get("WARDEN_E2E_PORT", "8931"))
# The redirect URI registered at the provider must match exactly, so the live server's port is fixed.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", f"127.0.0.1:{LIVE_PORT}")
# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

USERS = {
    "alice": {"email": "alice@example.com", "name": "Alice Reviewer", "groups": ["warden-reviewers"]},
    "bob": {"email": "bob@example.com", "name": "Bob Reviewer", "groups": ["warden-reviewers", "staff"]},
    "sam": {"email": "sam@example.com", "name": "Sam Security", "groups": ["warden-security"]},
    "mallory": {"email": "mallory@example.com", "name": "Mallory Outsider", "groups": []},
    "dave": {"email": "dave@example.com", "name": "Dave Admin", "groups": ["warden-admins"]},
    "carol": {"email": "carol@example.com", "name": "Carol Compliance", "groups": ["warden-compliance"]},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def oidc_users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oidc") / "users.json"
    path.write_text(json.dumps(USERS))
    return path


@pytest.fixture(scope="session")
def oidc_provider(oidc_users_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node = shutil.which("node")
    if node is None or not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        pytest.fail("the OIDC provider needs node and `npm ci` in tests/oidc (bin/test does both)")
    port = _free_port()
    log = tmp_path_factory.mktemp("oidc-log") / "provider.log"
    live = f"http://127.0.0.1:{LIVE_PORT}"
    proc = subprocess.Popen(
        [node, "provider.mjs"],
        cwd=OIDC_DIR,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "PORT": str(port),
            "USERS_FILE": str(oidc_users_file),
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
def oidc_settings(settings, oidc_provider: str) -> Any:
    settings.OIDC_OP_ISSUER = oidc_provider
    settings.OIDC_RP_CLIENT_ID = settings.WARDEN_OIDC_AUDIENCE = "warden"
    settings.OIDC_RP_CLIENT_SECRET = "warden-secret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{oidc_provider}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{oidc_provider}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{oidc_provider}/me"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{oidc_provider}/jwks"
    settings.OIDC_OP_END_SESSION_ENDPOINT = f"{oidc_provider}/session/end"
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    settings.WARDEN_STEPUP_ACR = "urn:warden:mfa"
    return settings


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (bin/test does it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    contexts = []

    def make() -> Any:
        context = browser.new_context(base_url=f"http://127.0.0.1:{LIVE_PORT}")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run where they are sent (the resume after an approval runs in the live server)."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def sign_in(page: Any, user: str, *, mfa: bool = False, next_path: str = "/approvals/") -> None:
    page.goto(next_path)
    page.get_by_role("link", name="Sign in with your identity provider").click()
    page.wait_for_selector("text=Test identity provider: sign in")
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", "pw")
    if mfa:
        page.check("input[name=mfa]")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_path}")
