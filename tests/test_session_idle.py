"""Hardening item 11: the queue's one-second refresh does not keep a reviewer signed in."""

from __future__ import annotations

import re
import time

import pytest

from tests.approvals.conftest import make_user
from web import middleware

pytestmark = pytest.mark.django_db
POLL = {"HTTP_HX_REQUEST": "true", "HTTP_X_WARDEN_BACKGROUND": "1"}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(middleware.time, "time", fake)
    return fake


@pytest.fixture
def reviewer(client, settings, clock):
    settings.WARDEN_SESSION_IDLE_SECONDS = 120
    client.force_login(make_user("alice", "reviewer"))
    assert client.get("/approvals/").status_code == 200  # the person opens the queue
    return client


def test_the_queue_marks_its_refresh_as_background(reviewer) -> None:
    page = reviewer.get("/approvals/").content.decode()
    poller = re.search(r'<div id="queue"[^>]*>', page)
    assert poller is not None and 'hx-trigger="every 1s"' in poller.group(0)
    assert 'hx-headers=\'{"X-Warden-Background": "1"}\'' in poller.group(0)


def test_background_refreshes_do_not_keep_the_session_alive(reviewer, clock) -> None:
    for _ in range(5):  # ten minutes of polling in 100 s steps, nobody at the screen
        clock.now += 100
        response = reviewer.get("/approvals/rows/", **POLL)
        if response.status_code != 200:
            break
    assert response.status_code == 204 and response["HX-Redirect"] == "/accounts/login/?expired=1"
    assert reviewer.get("/approvals/").status_code == 302  # signed out for good


def test_a_person_at_the_screen_stays_signed_in(reviewer, clock) -> None:
    for _ in range(5):
        clock.now += 100
        assert reviewer.get("/approvals/rows/", HTTP_HX_REQUEST="true").status_code == 200  # clicks, not polls
    assert reviewer.get("/approvals/").status_code == 200


def test_idle_expiry_of_a_full_page_redirects_to_the_login(reviewer, clock) -> None:
    clock.now += 121
    response = reviewer.get("/approvals/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?expired=1"
