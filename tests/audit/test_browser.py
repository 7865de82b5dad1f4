"""The audit browser for compliance and security staff."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from py_ocsf_models.events.base_event import BaseEvent

import audit
from audit.models import VerificationRun
from config.celery import app as celery_app
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(db) -> Client:
    client = Client()
    client.force_login(make_user("carol", "compliance"))
    return client


def fill(n: int) -> None:
    for i in range(n):
        audit.record(
            "action.executed" if i % 2 else "action.denied",
            f"agent:{'a' if i % 3 else 'b'}",
            session=f"s-{i % 4}",
            workflow="wf",
            system="crm",
            outcome="ok" if i % 2 else "denied",
            details={"i": i},
        )
    audit.sequence_now()


def seqs(response) -> list[int]:
    return [e.seq for e in response.context["events"]]


def test_keyset_pages_walk_back_through_every_event(carol) -> None:
    fill(120)
    first = carol.get(reverse("audit:browse"))
    assert seqs(first) == list(range(120, 70, -1)) and first.context["next_before"] == 71
    second = carol.get(reverse("audit:browse"), {"before": 71})
    third = carol.get(reverse("audit:browse"), {"before": second.context["next_before"]})
    assert seqs(second) == list(range(70, 20, -1)) and seqs(third) == list(range(20, 0, -1))
    assert third.context["next_before"] is None


def test_filters_combine(carol) -> None:
    fill(40)
    response = carol.get(reverse("audit:browse"), {"kind": "action.denied", "agent": "b", "session": "s-0"})
    events = response.context["events"]
    assert events and all(e.kind == "action.denied" and e.actor == "agent:b" and e.session == "s-0" for e in events)
    assert carol.get(reverse("audit:browse"), {"since": "2999-01-01"}).context["events"] == []
    bad = carol.get(reverse("audit:browse"), {"since": "yesterday-ish"})
    assert "is not a date" in bad.content.decode()


def test_a_sessions_timeline_is_in_order(carol) -> None:
    fill(20)
    response = carol.get(reverse("audit:timeline", args=["s-1"]))
    assert seqs(response) == [i + 1 for i in range(20) if i % 4 == 1]


def test_verification_from_the_browser_names_the_tampered_row(carol, tamper) -> None:
    fill(30)
    tamper("UPDATE audit_auditevent SET outcome = 'forged' WHERE seq = 17")
    celery_app.conf.task_always_eager = True
    try:
        response = carol.post(reverse("audit:verify"), follow=True)
    finally:
        celery_app.conf.task_always_eager = False
    run = VerificationRun.objects.get()
    assert (run.status, run.first_bad_seq) == ("broken", 17)
    assert "The log is broken at seq 17" in response.content.decode()
    progress = carol.get(reverse("audit:verify_status", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert 'value="100"' in progress.content.decode()


def test_exports_stream_ocsf_and_csv(carol) -> None:
    fill(10)
    response = carol.get(reverse("audit:export", args=["jsonl"]), {"outcome": "denied"})
    assert response.streaming and response["Content-Type"] == "application/x-ndjson"
    events = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert len(events) == 5
    for event in events:
        BaseEvent.model_validate(event)
    csv_body = b"".join(carol.get(reverse("audit:export", args=["csv"])).streaming_content).decode()
    assert csv_body.count("\n") == 11
    assert carol.get("/audit/export.xml").status_code == 404


def test_an_event_page_shows_its_inclusion_in_the_latest_checkpoint(carol) -> None:
    fill(10)
    fill(3)  # a newer checkpoint, of size 13
    page = carol.get(reverse("audit:event", args=[4])).content.decode()
    assert "Included in the latest checkpoint" in page and "checkpoint of 13 events" in page
    assert carol.get(reverse("audit:event", args=[99])).status_code == 404


def test_an_event_page_says_when_the_proof_fails(carol, tamper) -> None:
    fill(8)
    tamper('UPDATE audit_treenode SET hash = %s WHERE level = 2 AND "index" = 1', ["0" * 64])
    page = carol.get(reverse("audit:event", args=[2])).content.decode()
    assert "Not proved" in page and "Included" not in page


def test_the_browser_lists_sequenced_events_and_counts_the_rest(carol) -> None:
    fill(3)
    audit.record("test.pending", "system:test")
    response = carol.get(reverse("audit:browse"))
    assert seqs(response) == [3, 2, 1]
    assert "1 event awaiting the sequencer" in response.content.decode()


@pytest.mark.parametrize("roles", [(), ("reviewer",), ("admin",)])
def test_others_get_403(db, roles) -> None:
    client = Client()
    client.force_login(make_user("someone", *roles))
    assert client.get(reverse("audit:browse")).status_code == 403
    assert client.get(reverse("audit:export", args=["csv"])).status_code == 403
    assert client.post(reverse("audit:verify")).status_code == 403
    assert client.get(reverse("audit:event", args=[1])).status_code == 403


def test_security_staff_may_browse(db) -> None:
    client = Client()
    client.force_login(make_user("sam", "security"))
    assert client.get(reverse("audit:browse")).status_code == 200


def test_the_search_answers_what_did_agent_x_do(demo) -> None:
    """Filter by agent finds events whatever their actor (the gateway executed, a reviewer
    approved); by action, by kind prefix, and by text in the details."""
    from django.test import Client

    import audit as audit_app
    from agents import gateway, sessions
    from tests.approvals.conftest import make_user

    _session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1002"}, tool_use_id="t1")
    audit_app.sequence_now()
    client = Client()
    client.force_login(make_user("carol", "compliance"))
    page = client.get("/audit/", {"agent": "refund-bot", "kind": "action.executed"}).content.decode()
    assert "action.executed" in page
    assert "crm.get_customer" in client.get("/audit/", {"agent": "refund-bot", "kind": "action.*"}).content.decode()
    assert "action.executing" in client.get("/audit/", {"action": "crm.get_customer"}).content.decode()
    assert "action.executing" in client.get("/audit/", {"q": "C-1002"}).content.decode()
    assert "action.executing" not in client.get("/audit/", {"q": "C-9999"}).content.decode()


def test_a_filter_value_cannot_add_another_filter_to_the_export_and_page_links(carol) -> None:
    """The links carry the filters URL-encoded: `q=x&agent=b` stays one free-text value."""
    fill(6)
    page = carol.get(reverse("audit:browse"), {"q": "x&agent=b"}).content.decode()
    links = re.findall(r'href="([^"]*export[^"]*)"', page)
    assert links and all(link.endswith("?q=x%26agent%3Db") for link in links)
