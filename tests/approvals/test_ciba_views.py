"""The "approve on my device" block and its endpoints, through Django's test client, against
the scripted IdP of test_ciba.py."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import CibaRequest
from tests.approvals.test_ciba import alice, at_idp, idp  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_request_page_offers_it_only_when_enabled(pending_refund, alice, idp, settings) -> None:
    page = client_for(alice).get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    assert "Approve on my device" in page and f"issue_refund#{pending_refund.params_hash[:6]}" in page
    settings.WARDEN_CIBA_ENABLED = False
    page = client_for(alice).get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    assert "Approve on my device" not in page


def test_starting_it_shows_what_the_device_shows_and_waits(pending_refund, alice, idp) -> None:
    client = client_for(alice)
    response = client.post(
        reverse("approvals:ciba_start", args=[pending_refund.pk]), {"params_hash": pending_refund.params_hash}
    )
    assert response.status_code == 302
    cr = CibaRequest.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert "Check your device" in page and 'data-ciba-status="pending"' in page and cr.binding_message in page
    assert 'name="ciba"' not in page  # no second request while one waits
    panel = client.get(reverse("approvals:ciba_panel", args=[pending_refund.pk]), {"waiting": 1})
    assert panel.status_code == 200 and "HX-Refresh" not in panel
    CibaRequest.objects.filter(pk=cr.pk).update(status="denied", reason="denied on the device")
    panel = client.get(reverse("approvals:ciba_panel", args=[pending_refund.pk]), {"waiting": 1})
    assert panel["HX-Refresh"] == "true" and 'data-ciba-status="denied"' in panel.content.decode()


def test_a_refusal_is_a_message_not_an_error_page(pending_refund, alice, idp) -> None:
    response = client_for(alice).post(
        reverse("approvals:ciba_start", args=[pending_refund.pk]), {"params_hash": "stale"}, follow=True
    )
    assert response.status_code == 200 and "parameters changed" in response.content.decode()
    assert not CibaRequest.objects.exists()


def test_outsiders_and_wrong_methods_are_refused(pending_refund, outsider_mallory, alice, idp) -> None:
    url = reverse("approvals:ciba_start", args=[pending_refund.pk])
    assert client_for(outsider_mallory).post(url, {"params_hash": pending_refund.params_hash}).status_code == 403
    assert (
        client_for(outsider_mallory).get(reverse("approvals:ciba_panel", args=[pending_refund.pk])).status_code == 403
    )
    assert client_for(alice).get(url).status_code == 405
    assert Client().post(url).status_code == 302  # to the sign-in page
    assert not CibaRequest.objects.exists() and not idp.calls


def test_the_initiator_sees_no_button(demo, model_server, alice, idp) -> None:
    from tests.approvals.conftest import run_to_pause

    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "oidc:alice-sub")
    page = client_for(alice).get(reverse("approvals:detail", args=[ar.pk])).content.decode()
    assert "Approve on my device" not in page
