"""The workflow editor keeps every field on an error, shows each error at its row in its own
words, and edits flat conditions as rows (anything else as JSON, kept as it is)."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st

from console import workflow_form
from governance.conditions import LIST_OPERATORS, OPERATORS
from governance.models import TierAssignment, Workflow
from tests.approvals.test_provisioning import admin_client

pytestmark = pytest.mark.django_db
URL = "/provisioning/workflows/refund-triage/"


def form_of(page: str) -> QueryDict:
    """The fields the browser would post from the rendered editor (inputs, selects, textareas)."""
    post = QueryDict(mutable=True)
    form = page[page.index('class="workflow-form"') :]
    for tag in re.finditer(
        r"<(input|select|textarea)\b([^>]*)>(.*?)(?=<(?:input|select|textarea)\b|</form>)", form, re.S
    ):
        kind, attrs, rest = tag.groups()
        name = re.search(r'name="([^"]*)"', attrs)
        if not name:
            continue
        name = html.unescape(name.group(1))
        if kind == "input":
            if 'type="checkbox"' in attrs and " checked" not in attrs:
                continue
            value = re.search(r'value="([^"]*)"', attrs)
            post.appendlist(name, html.unescape(value.group(1)) if value else ("on" if "checkbox" in attrs else ""))
        elif kind == "select":
            chosen = re.search(r'<option(?: value="([^"]*)")? selected>([^<]*)', rest)
            post.appendlist(
                name,
                html.unescape(
                    chosen.group(1) if chosen and chosen.group(1) is not None else (chosen.group(2) if chosen else "")
                ),
            )
        else:
            post.appendlist(name, html.unescape(rest.split("</textarea>")[0]).removeprefix("\n"))
    return post


def test_the_editor_shows_flat_conditions_as_rows(demo) -> None:
    page = admin_client(mfa=True).get(URL).content.decode()
    post = form_of(page)
    rows = list(
        zip(post.getlist("cond_param"), post.getlist("cond_op"), post.getlist("cond_value"), post.getlist("cond_tier"))
    )
    assert ("amount", "gt", "100", "3") in rows and ("currency", "ne", "EUR", "3") in rows
    assert ("amount", "gt", "5000", "4") in rows
    assert "is more than" in page and "Advanced: conditions as JSON" in page


def test_saving_the_form_as_shown_changes_nothing(demo) -> None:
    client = admin_client(mfa=True)
    before = {
        t.action_type.name: (t.tier, t.quorum, t.conditions)
        for t in TierAssignment.objects.filter(workflow__name="refund-triage")
    }
    response = client.post(URL, dict(form_of(client.get(URL).content.decode()).lists()))
    assert response.status_code == 302
    after = {
        t.action_type.name: (t.tier, t.quorum, t.conditions)
        for t in TierAssignment.objects.filter(workflow__name="refund-triage")
    }
    assert after == before


def test_a_condition_row_is_edited_and_added(demo) -> None:
    client = admin_client(mfa=True)
    post = form_of(client.get(URL).content.decode())
    values = post.getlist("cond_value")
    values[post.getlist("cond_value").index("100")] = "150"
    post.setlist("cond_value", values)
    # fill the empty condition row of crm.issue_refund
    rows, params = post.getlist("cond_row"), post.getlist("cond_param")
    refund_row = str(post.getlist("tier_action").index("crm.issue_refund"))
    blank = next(i for i, (r, p) in enumerate(zip(rows, params)) if r == refund_row and not p)
    for name, value in (
        ("cond_param", "reason"),
        ("cond_op", "matches"),
        ("cond_value", "(?i)goodwill"),
        ("cond_tier", "3"),
    ):
        column = post.getlist(name)
        column[blank] = value
        post.setlist(name, column)
    assert client.post(URL, dict(post.lists())).status_code == 302
    conditions = TierAssignment.objects.get(
        workflow__name="refund-triage", action_type__name="crm.issue_refund"
    ).conditions
    assert {"param": "amount", "op": "gt", "value": 150, "tier": 3} in conditions
    assert {"param": "reason", "op": "matches", "value": "(?i)goodwill", "tier": 3} in conditions


def test_on_an_error_every_field_stays_and_the_error_is_at_its_row(demo) -> None:
    client = admin_client(mfa=True)
    post = form_of(client.get(URL).content.decode())
    version = Workflow.objects.get(name="refund-triage").version
    post["max_session_seconds"] = "777"
    post.pop("grant:read:crm.customer", None)  # an unticked box stays unticked
    tiers = post.getlist("tier_tier")
    tiers[post.getlist("tier_action").index("crm.add_note")] = "3"
    post.setlist("tier_tier", tiers)
    actions = post.getlist("tier_action")
    actions[-1] = "crm.isue_refund"  # a typo in the new row
    post.setlist("tier_action", actions)
    tiers = post.getlist("tier_tier")
    tiers[-1] = "2"
    post.setlist("tier_tier", tiers)
    cond_tiers = post.getlist("cond_tier")
    cond_tiers[post.getlist("cond_value").index("EUR")] = "2"  # does not raise tier 2
    post.setlist("cond_tier", cond_tiers)
    response = client.post(URL, dict(post.lists()))
    page = response.content.decode()
    assert response.status_code == 400 and "Nothing was saved" in page
    assert Workflow.objects.get(name="refund-triage").version == version
    kept = form_of(page)
    assert kept["max_session_seconds"] == "777" and "grant:read:crm.customer" not in kept
    assert "crm.isue_refund" in kept.getlist("tier_action")
    assert kept.getlist("tier_tier")[kept.getlist("tier_action").index("crm.add_note")] == "3"
    text = html.unescape(page)
    assert "workflows[" not in text and "tiers[" not in text and "conditions[" not in text
    new_row = text[text.index('data-action="crm.isue_refund"') :]
    assert (
        "unknown action 'crm.isue_refund' (did you mean 'crm.issue_refund'?)" in new_row[: new_row.index("</fieldset>")]
    )
    refund = text[text.index('data-action="crm.issue_refund"') :]
    refund = refund[: refund.index("</fieldset>")]
    assert "Condition 2: tier 2 does not raise the assigned tier 2" in refund


def test_unreadable_numbers_and_json_are_reported_at_their_rows(demo) -> None:
    client = admin_client(mfa=True)
    post = form_of(client.get(URL).content.decode())
    tiers = post.getlist("tier_tier")
    tiers[0] = "three"
    post.setlist("tier_tier", tiers)
    advanced = post.getlist("tier_conditions")
    advanced[1] = "[{"
    post.setlist("tier_conditions", advanced)
    post["max_session_seconds"] = "soon"
    page = html.unescape(client.post(URL, dict(post.lists())).content.decode())
    assert "the tier is a whole number from 1 to 4" in page
    assert "the advanced conditions must be a JSON list" in page and "[{" in page
    assert "enter a whole number of seconds" in page and 'value="soon"' in page


def test_a_nested_condition_stays_in_the_json_box_and_is_kept_as_is() -> None:
    nested = {"any": [{"param": "amount", "op": "gt", "value": 1}, {"not": {"param": "x", "op": "present"}}], "tier": 3}
    flat = {"param": "amount", "op": "gt", "value": 100, "tier": 3}
    assert workflow_form.is_flat(flat) and not workflow_form.is_flat(nested)
    assert not workflow_form.is_flat({**flat, "value": {"a": 1}}) and not workflow_form.is_flat({**flat, "note": "x"})
    post = QueryDict(mutable=True)
    post.update({"version": "1", "max_session_seconds": "60"})
    for name, value in (("tier_action", "crm.issue_refund"), ("tier_tier", "2"), ("tier_quorum", "1")):
        post.appendlist(name, value)
    post.appendlist("tier_conditions", json.dumps([nested]))
    for name, value in (
        ("cond_row", "0"),
        ("cond_param", "amount"),
        ("cond_op", "gt"),
        ("cond_value", "100"),
        ("cond_list", ""),
        ("cond_tier", "3"),
    ):
        post.appendlist(name, value)
    form = workflow_form.from_post(post)
    _, tiers, _, _ = workflow_form.to_update(form)
    assert tiers[0]["conditions"] == [flat, nested] and not form.has_errors


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from([op for op in OPERATORS if op != "present"]),
    value=st.one_of(scalars, st.lists(scalars, max_size=4)),
)
def test_a_value_reads_back_as_it_was_shown(op, value) -> None:
    """Whatever a flat condition holds, its text box gives it back unchanged (1 stays a number,
    "1" stays text, a pattern stays as typed), so saving the page as shown changes nothing."""
    if op in LIST_OPERATORS and not isinstance(value, list):
        value = [value]
    text = workflow_form.value_text(op, value)
    back = workflow_form.parse_value(op, text)
    if op == "matches" and not isinstance(value, str):
        return  # not a valid condition: the policy refuses it, the text box need not carry it
    assert json.dumps(back, sort_keys=True) == json.dumps(value, sort_keys=True), (op, value, text)


def test_an_outsider_cannot_open_the_editor(demo, outsider_mallory) -> None:
    from django.test import Client

    client = Client()
    client.force_login(outsider_mallory)
    assert client.get(URL).status_code == 403 and client.post(URL, {}).status_code == 403
