"""The Procfile's web process (gunicorn with one uvicorn worker, config/asgi.py), for real:
a long-poll that waits for a reviewer holds no worker, ends when the reviewer decides, and
answers what the view answers; the body cap the adapter adds answers as the API does."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from agents.api import long_poll
from agents.api.auth import agent_key_create
from agents.models import ActionRequest
from approvals.services import action_request_decide
from governance.models import AgentIdentity
from tests.api.conftest import bearer
from tests.approvals.conftest import make_user

ROOT = Path(__file__).resolve().parent.parent.parent
REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self, method: str, path: str, token: str = "", body: Any = None, timeout: float = 30
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(data) if data else None


@pytest.fixture
def server(demo, tmp_path) -> Iterator[Server]:
    """The Procfile's `web` line, on loopback, one worker: one process, one sync thread."""
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    port = _free_port()
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "WARDEN_DATA_DIR": str(tmp_path),
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
    )
    log = tmp_path / "web.log"
    command = web.removeprefix("web:").replace("0.0.0.0", "127.0.0.1")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            if Server(port).request("GET", "/healthz")[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the web process did not start:\n{log.read_text()}")
        time.sleep(0.1)  # polling for the server to listen, with a deadline
    yield Server(port)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


def _session(server: Server) -> str:
    key = agent_key_create(AgentIdentity.objects.get(name="refund-bot"))
    status, _, body = server.request(
        "POST", "/api/v1/sessions/", key, {"workflow": "refund-triage", "initiated_by": "user:dana"}
    )
    assert status == 201, body
    return body["token"]


def _pending(server: Server, token: str) -> str:
    status, _, body = server.request(
        "POST", "/api/v1/authorize", token, {"action": "crm.issue_refund", "params": REFUND, "tool_use_id": "t1"}
    )
    assert (status, body["decision"]) == (200, "pending_approval"), body
    return body["action_request_id"]


SERVED = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def served(test: Any) -> Any:
    for mark in SERVED:
        test = mark(test)
    return test


@served
def test_a_waiting_long_poll_holds_no_worker_and_ends_when_the_reviewer_decides(server: Server) -> None:
    waiter = _session(server)
    ar = _pending(server, waiter)
    answer: dict[str, Any] = {}
    poll = threading.Thread(
        target=lambda: answer.update(
            zip(("status", "headers", "body"), server.request("GET", f"/api/v1/actions/{ar}?wait=25", waiter))
        ),
        daemon=True,
    )
    poll.start()
    # One worker, one sync thread: a sync worker would answer none of these until the wait ends.
    other = _session(server)
    for _ in range(5):
        status, _, body = server.request(
            "POST", "/api/v1/authorize", other, {"action": "crm.get_customer", "params": {"customer_id": "C-1001"}}
        )
        assert (status, body["decision"]) == (200, "allow"), body
    assert server.request("GET", "/healthz")[0] == 200
    assert poll.is_alive(), "the long-poll ended although nobody decided"

    pending = ActionRequest.objects.get(pk=ar)
    action_request_decide(
        action_request=pending,
        reviewer=make_user("bob", "reviewer"),
        decision="approve",
        comment="",
        params_hash=pending.params_hash,
    )
    poll.join(timeout=20)
    assert not poll.is_alive(), "the long-poll did not end when the reviewer decided"
    assert answer["status"] == 200 and answer["body"]["status"] == "approved", answer
    assert long_poll.HEADER.lower() not in answer["headers"]  # the signal between view and loop stays inside


@served
def test_a_long_poll_that_runs_out_answers_the_status_and_refusals_stay_the_views(server: Server) -> None:
    waiter = _session(server)
    ar = _pending(server, waiter)
    status, headers, body = server.request("GET", f"/api/v1/actions/{ar}?wait=1", waiter)
    assert (status, body["status"]) == (200, "awaiting_approval")
    assert long_poll.HEADER.lower() not in headers
    status, headers, body = server.request("HEAD", f"/api/v1/actions/{ar}?wait=1", waiter)
    assert (status, body) == (200, None) and long_poll.HEADER.lower() not in headers

    status, headers, body = server.request("GET", f"/api/v1/actions/{ar}?wait=soon", waiter)
    assert status == 400 and headers["content-type"] == "application/problem+json" and "wait" in body["errors"]
    stranger = _session(server)
    status, _, body = server.request("GET", f"/api/v1/actions/{ar}?wait=5", stranger)
    assert status == 404 and body["type"] == "urn:warden:problem:not-found"
    status, _, body = server.request("GET", f"/api/v1/actions/{ar}?wait=5", "not-a-token")
    assert status == 401


@served
def test_a_body_beyond_the_cap_is_refused_before_it_is_buffered(server: Server, settings) -> None:
    token = _session(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    # Declared larger than four times WARDEN_MAX_BODY_BYTES: refused on the header, nothing read.
    conn.putrequest("POST", "/api/v1/authorize")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(4 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1))
    conn.endheaders()
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 413 and body["type"] == "urn:warden:problem:too-large"
    # Within the cap but over the limit: the view's own 413, the same shape.
    status, _, body = server.request("POST", "/api/v1/authorize", token, {"pad": "x" * (2 * 1024 * 1024)})
    assert status == 413 and body["type"] == "urn:warden:problem:too-large"
    assert server.request("GET", "/healthz")[0] == 200


def _in_process_pending() -> tuple[str, str]:
    """A session (token) with one tier 3 action awaiting a reviewer, made through the API."""
    key = agent_key_create(AgentIdentity.objects.get(name="refund-bot"))
    token = (
        bearer(APIClient(), key).post("/api/v1/sessions/", {"workflow": "refund-triage"}, format="json").json()["token"]
    )
    pending = bearer(APIClient(), token).post(
        "/api/v1/authorize", {"action": "crm.issue_refund", "params": REFUND}, format="json"
    )
    return token, pending.json()["action_request_id"]


@pytest.mark.django_db
def test_on_the_loop_the_view_answers_at_once_and_asks_for_the_wait(demo, monkeypatch) -> None:
    """The view's half: under config/asgi.py (its environ key, which no client can send) it does
    not sleep; it answers the status and names the action and the seconds to wait."""
    token, ar = _in_process_pending()
    monkeypatch.setattr("agents.api.views.time.sleep", lambda seconds: pytest.fail("the view slept on the loop"))
    response = bearer(APIClient(), token).get(f"/api/v1/actions/{ar}?wait=30", **{long_poll.ON_LOOP: True})
    assert response.json()["status"] == "awaiting_approval"
    assert response[long_poll.HEADER] == f"{ar};25"  # capped at LONG_POLL_MAX
    plain = bearer(APIClient(), token).get(f"/api/v1/actions/{ar}?wait=0", **{long_poll.ON_LOOP: True})
    assert long_poll.HEADER not in plain


@served
def test_a_streamed_response_arrives_whole(server: Server, settings) -> None:
    """The audit export streams (StreamingHttpResponse): the adapter sends it piece by piece."""
    from django.test import Client
    from django.urls import reverse

    import audit
    from audit.models import AuditEvent

    _session(server)  # some events
    audit.sequence_now()  # the export holds sequenced events
    browser = Client()
    browser.force_login(make_user("carol", "compliance"))
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(
        "GET", reverse("audit:export", args=["jsonl"]), headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
    )
    response = conn.getresponse()
    lines = response.read().decode().splitlines()
    conn.close()
    assert response.status == 200 and response.getheader("Content-Type") == "application/x-ndjson"
    events = [json.loads(line) for line in lines]
    assert len(events) == AuditEvent.objects.filter(seq__isnull=False).count() > 5


def _asgi_get(path: str, token: str, receive_after_body: Any, method: str = "GET") -> list[Any]:
    """Calls config/asgi.py in this process, as uvicorn would, and returns what it sent."""
    from config.asgi import application

    url, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[Any] = []
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Any:
        return messages.pop(0) if messages else await receive_after_body()

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    return sent


async def _never() -> Any:
    await asyncio.Event().wait()  # the client stays


@pytest.mark.django_db(transaction=True)
def test_a_failing_status_check_ends_the_wait_with_the_views_answer(demo, monkeypatch) -> None:
    """The database fails while the loop waits: no bare 500 from the server, the view answers."""
    from django.db import OperationalError

    token, ar = _in_process_pending()
    checks: list[str] = []

    def failing(pk: Any) -> bool:
        checks.append(pk)
        raise OperationalError("the server closed the connection")

    monkeypatch.setattr(long_poll, "awaits_reviewer", failing)
    sent = _asgi_get(f"/api/v1/actions/{ar}?wait=20", token, _never)
    assert len(checks) == 1  # the wait stopped at the first failure (it polls every 0.25 s otherwise)
    start, body = sent[0], b"".join(message.get("body", b"") for message in sent[1:])
    assert start["status"] == 200 and json.loads(body)["status"] == "awaiting_approval"
    assert long_poll.HEADER_BYTES not in dict(start["headers"])


@pytest.mark.django_db(transaction=True)
def test_a_client_that_leaves_during_the_wait_gets_nothing_and_holds_nothing(demo, monkeypatch) -> None:
    token, ar = _in_process_pending()
    checks: list[str] = []
    counted = long_poll.awaits_reviewer
    monkeypatch.setattr(long_poll, "awaits_reviewer", lambda pk: checks.append(pk) or counted(pk))

    async def leaves() -> Any:
        return {"type": "http.disconnect"}

    assert _asgi_get(f"/api/v1/actions/{ar}?wait=20", token, leaves) == []
    assert len(checks) <= 1  # it stopped when the client left, not after 80 checks
    assert ActionRequest.objects.get(pk=ar).status == ActionRequest.Status.AWAITING_APPROVAL


@pytest.mark.django_db(transaction=True)
def test_a_head_long_poll_waits_on_the_loop_too(demo, monkeypatch) -> None:
    """Django serves HEAD with the view's get: it must not sleep in the one sync thread."""
    token, ar = _in_process_pending()
    monkeypatch.setattr("agents.api.views.time.sleep", lambda seconds: pytest.fail("the view slept in the thread"))

    async def leaves() -> Any:
        return {"type": "http.disconnect"}

    assert _asgi_get(f"/api/v1/actions/{ar}?wait=20", token, leaves, method="HEAD") == []
    sent = _asgi_get(f"/api/v1/actions/{ar}?wait=0", token, _never, method="HEAD")
    assert sent[0]["status"] == 200 and long_poll.HEADER_BYTES not in dict(sent[0]["headers"])
