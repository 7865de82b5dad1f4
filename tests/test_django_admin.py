"""Django admin is the admins' read-only view of the governance registry, and nothing else:
the runtime's records and the audit trail belong to roles admins do not hold."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client

from tests.approvals.conftest import make_user


def test_only_the_governance_registry_and_users_are_in_django_admin() -> None:
    labels = {model._meta.app_label for model in admin.site._registry}
    assert labels == {"governance", "auth"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["agents/agentsession/", "agents/actionrequest/", "audit/auditevent/", "auditlog/logentry/"]
)
def test_an_admin_cannot_read_sessions_tool_calls_or_the_audit_trail_there(path) -> None:
    user = make_user("ada", "admin")
    user.is_staff = user.is_superuser = True  # as an OIDC sign-in with the admin role makes them
    user.save()
    client = Client()
    client.force_login(user)
    assert client.get(f"/admin/{path}").status_code == 404


@pytest.mark.django_db
def test_a_page_outside_ones_role_says_so_and_the_overview_links_only_where_one_may_go() -> None:
    client = Client()
    client.force_login(make_user("ada", "admin"))
    refused = client.get("/approvals/")
    assert refused.status_code == 403
    assert "not for your role" in refused.content.decode() and "Your roles: admin" in refused.content.decode()
    home = client.get("/").content.decode()
    assert 'href="/approvals/"' not in home.split("<h1>Overview</h1>", 1)[1].split("</div>", 1)[0]
