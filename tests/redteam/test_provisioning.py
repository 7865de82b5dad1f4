"""The provisioning UI's policy upload (README, Admins and compliance: "/provisioning/policy/:
upload a policy file, preview the plan, apply it"; "Provisioning edits go through the same
validation, plan and apply as policy_apply; a workflow edited by someone else since the form
was opened is refused, not overwritten").

"Apply this plan" posts the file's text again, and the plan is made anew against whatever the
database holds then: what another admin changed after the preview is deleted or deprovisioned
by a plan that nobody was shown."""

from __future__ import annotations

import re
from html import unescape

import pytest

from governance.actors import Actor
from governance.models import AgentIdentity
from governance.policyfile import export_yaml
from governance.services import agent_identity_create
from tests.approvals.test_provisioning import admin_client

pytestmark = pytest.mark.django_db


def _hidden_form(html: str) -> dict[str, str]:
    """The fields of the "Apply this plan" form, as the browser would post them."""
    form = re.search(r'<form[^>]*>(?:(?!</form>).)*name="apply"(?:(?!</form>).)*</form>', html, re.S).group(0)
    fields = {
        m.group(1): unescape(m.group(2)) for m in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form)
    }
    text = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', form, re.S)
    if text:
        fields["text"] = unescape(text.group(1))
    return fields


def test_apply_this_plan_never_applies_a_change_the_preview_did_not_show(demo) -> None:
    client = admin_client(mfa=True)
    text = export_yaml().replace("max_session_seconds: 600", "max_session_seconds: 660", 1)
    preview = client.post("/provisioning/policy/", {"text": text})
    assert preview.status_code == 200
    shown = preview.content.decode()
    assert "late-bot" not in shown
    form = _hidden_form(shown)

    # Meanwhile another admin provisions an agent.
    agent_identity_create(
        actor=Actor.cli("erin"), name="late-bot", owner="erin@example.com", recertify_by="2027-05-31", workflows=[]
    )

    client.post("/provisioning/policy/", form)
    assert AgentIdentity.objects.get(name="late-bot").status == AgentIdentity.Status.ACTIVE
