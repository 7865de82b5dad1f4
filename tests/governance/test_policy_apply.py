from __future__ import annotations

import io

import pytest
import yaml
from auditlog.models import LogEntry
from django.core.management import call_command

from audit.chain import verify
from audit.models import AuditEvent
from governance.models import AgentIdentity, TierAssignment, Workflow
from governance.policyfile import PolicyError, apply_policy, export_yaml, from_database, from_document, load

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_it_applies_the_example_policy(example_state) -> None:
    changes = apply_policy(example_state, actor="cli:test")
    assert len(changes) == sum(len(v) for v in example_state.values())
    assert Workflow.objects.count() == 3
    assert AgentIdentity.objects.get(name="support-bot").workflows.count() == 2
    assert (
        TierAssignment.objects.get(
            workflow__name="account-maintenance", action_type__name="crm.update_credit_limit"
        ).quorum
        == 2
    )
    assert AuditEvent.objects.filter(kind="policy.applied", actor="cli:test").count() == 1
    assert AuditEvent.objects.filter(kind="policy.created").count() == len(changes)
    assert verify().ok


def test_export_then_apply_gives_an_empty_plan(applied_policy) -> None:
    exported = export_yaml()
    assert apply_policy(from_document(load(exported)), actor="t", dry_run=True) == []
    assert from_document(load(exported)) == from_database()


def test_the_command_prints_the_plan_and_dry_run_changes_nothing(example_text, tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(example_text)
    code, out, _ = run("policy_apply", str(path), "--dry-run")
    assert code == 0
    assert "+ create workflow refund-triage" in out and "Dry run: nothing was applied." in out
    assert Workflow.objects.count() == 0 and AuditEvent.objects.count() == 0
    code, out, _ = run("policy_apply", str(path))
    assert code == 0 and "Applied." in out
    code, out, _ = run("policy_apply", str(path))
    assert "No changes" in out


def test_the_round_trip_through_the_commands(applied_policy, tmp_path) -> None:
    target = tmp_path / "export.yaml"
    assert run("policy_export", "-o", str(target))[0] == 0
    code, out, _ = run("policy_apply", str(target))
    assert code == 0 and "No changes" in out


def test_a_change_updates_bumps_the_version_and_is_recorded(applied_policy, example_text) -> None:
    doc = yaml.safe_load(example_text)
    doc["workflows"][0]["tiers"][3]["tier"] = 3  # crm.add_note 2 -> 3
    changes = apply_policy(from_document(load(yaml.safe_dump(doc))), actor="cli:alice")
    assert [str(c) for c in changes] == ["~ update workflow refund-triage (tiers)"]
    workflow = Workflow.objects.get(name="refund-triage")
    assert workflow.version == 2
    assert list(workflow.versions.values_list("version", flat=True)) == [2, 1]
    assert TierAssignment.objects.get(workflow=workflow, action_type__name="crm.add_note").tier == 3
    event = AuditEvent.objects.get(kind="policy.updated")
    assert (event.workflow, event.actor, event.details["fields"]) == ("refund-triage", "cli:alice", ["tiers"])
    # django-auditlog records who changed the tier configuration, and when.
    entry = LogEntry.objects.filter(content_type__model="tierassignment").latest("timestamp")
    assert entry.actor_email == "cli:alice"


def test_removing_things_deletes_them_and_deprovisions_agents(applied_policy, example_text) -> None:
    doc = yaml.safe_load(example_text)
    doc["agents"] = [a for a in doc["agents"] if a["name"] != "support-bot"]
    doc["workflows"] = [w for w in doc["workflows"] if w["name"] != "account-maintenance"]
    doc["agents"][0]["workflows"] = ["refund-triage"]
    doc["action_types"] = [
        a for a in doc["action_types"] if a["name"] not in ("crm.delete_customer", "crm.update_credit_limit")
    ]
    with pytest.raises(PolicyError) as refused:  # removing needs allow_delete (--allow-delete)
        apply_policy(from_document(load(yaml.safe_dump(doc))), actor="t")
    assert "4 removal(s) need --allow-delete" in refused.value.errors[0] and len(refused.value.changes) == 4
    assert Workflow.objects.filter(name="account-maintenance").exists()
    changes = {str(c) for c in apply_policy(from_document(load(yaml.safe_dump(doc))), actor="t", allow_delete=True)}
    assert changes == {
        "- deprovision agent support-bot",
        "- delete workflow account-maintenance",
        "- delete action type crm.delete_customer",
        "- delete action type crm.update_credit_limit",
    }
    assert AgentIdentity.objects.get(name="support-bot").status == "deprovisioned"
    assert not Workflow.objects.filter(name="account-maintenance").exists()
    # The deprovisioned agent stays deprovisioned; applying the same file again changes nothing.
    assert apply_policy(from_document(load(yaml.safe_dump(doc))), actor="t") == []


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (
            lambda d: d["workflows"][2]["tiers"].__setitem__(0, {"action": "crm.refnd", "tier": 1}),
            "workflows[2].tiers[0].action: unknown action 'crm.refnd'",
        ),
        (
            lambda d: d["workflows"][0]["tiers"][0].__setitem__("tier", 5),
            "workflows[0].tiers[0].tier: tier must be an integer from 1 to 4, not 5",
        ),
        (
            lambda d: d["workflows"][0]["tiers"][0].__setitem__("tier", 0),
            "workflows[0].tiers[0].tier: tier must be an integer from 1 to 4, not 0",
        ),
        (
            lambda d: d["systems"].append({"name": "crm", "connector": "x"}),
            "systems[4].name: duplicate name 'crm' (first at systems[0])",
        ),
        (
            lambda d: d["data_objects"][0].__setitem__("system", "crn"),
            "data_objects[0].system: unknown system 'crn' (did you mean 'crm'?)",
        ),
        (
            lambda d: d["agents"][0].__setitem__("workflows", ["nope"]),
            "agents[0].workflows[0]: unknown workflow 'nope'",
        ),
        (
            lambda d: d["agents"][0].__setitem__("recertify_by", "next year"),
            "agents[0].recertify_by: 'next year' is not a date (YYYY-MM-DD)",
        ),
        (
            lambda d: d["workflows"][0]["access"].pop(2),
            "workflows[0].tiers[5].action: 'crm.issue_refund' needs write on crm.refund, which the access map does not grant",
        ),
        (
            lambda d: d["workflows"][0]["tiers"][5]["conditions"][0].__setitem__("op", "bigger"),
            "workflows[0].tiers[5].conditions[0]: unknown operator 'bigger'",
        ),
        (
            lambda d: d["workflows"][1]["tiers"][5]["conditions"][0].__setitem__("list", "company_domain"),
            "workflows[1].tiers[5].conditions[0]: unknown list 'company_domain'",
        ),
        (
            lambda d: d["workflows"][0]["tiers"][5]["conditions"][0].__setitem__("tier", 2),
            "workflows[0].tiers[5].conditions[0].tier: tier 2 does not raise the assigned tier 2",
        ),
        (
            lambda d: d["action_types"][0].__setitem__("params_schema", {"type": "objekt"}),
            "action_types[0].params_schema: not a valid JSON schema",
        ),
        (
            lambda d: d["workflows"][0].__setitem__("acess", []),
            "workflows[0]: Additional properties are not allowed ('acess' was unexpected)",
        ),
    ],
)
def test_errors_name_their_place_and_nothing_is_applied(example_text, mutate, expected) -> None:
    doc = yaml.safe_load(example_text)
    mutate(doc)
    with pytest.raises(PolicyError) as info:
        load(yaml.safe_dump(doc))
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors
    assert Workflow.objects.count() == 0


def test_it_reports_every_error_at_once(example_text) -> None:
    doc = yaml.safe_load(example_text)
    doc["workflows"][0]["tiers"][0]["action"] = "crm.nope"
    doc["agents"][1]["workflows"] = ["gone"]
    with pytest.raises(PolicyError) as info:
        load(yaml.safe_dump(doc))
    assert len(info.value.errors) == 2


@pytest.mark.parametrize(
    "text, expected",
    [
        ("systems: [\n  - name: crm\n", "line 2, column 3"),
        ("systems:\n  - name: a\n    name: b\n    connector: x\n", "duplicate key 'name'"),
        ("", "the policy file is empty"),
        ("- just\n- a list\n", "(document): ['just', 'a list'] is not of type 'object'"),
    ],
)
def test_malformed_files_get_a_clear_error(text, expected) -> None:
    with pytest.raises(PolicyError) as info:
        load(text)
    assert any(expected in e for e in info.value.errors), info.value.errors


def test_the_command_exits_1_listing_the_errors(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("workflows:\n  - name: w\n    tiers:\n      - {action: crm.refnd, tier: 9}\n")
    code, _, err = run("policy_apply", str(path))
    assert code == 1
    assert "nothing was applied" in err and "workflows[0].tiers[0].tier" in err
    code, _, err = run("policy_apply", str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read" in err
    assert AuditEvent.objects.count() == 0


def test_a_failure_while_applying_rolls_everything_back(applied_policy, example_text) -> None:
    doc = yaml.safe_load(example_text)
    doc["systems"] = [s for s in doc["systems"] if s["name"] != "mail"]
    # The mail system is still used by its data object and action: validation catches it.
    with pytest.raises(PolicyError):
        load(yaml.safe_dump(doc))
    before = AuditEvent.objects.count()
    # A deletion the database refuses (a protected reference) is reported, and nothing changes.
    from governance.models import ActionType, DataObject, System

    System.objects.create(name="legacy", connector="http")
    DataObject.objects.create(name="legacy.thing", system=System.objects.get(name="legacy"))
    state = from_database()
    del state["systems"]["legacy"]
    with pytest.raises(PolicyError) as info:
        apply_policy(state, actor="t", allow_delete=True)
    assert "cannot delete system 'legacy'" in info.value.errors[0]
    assert System.objects.filter(name="legacy").exists()
    assert AuditEvent.objects.count() == before
    assert ActionType.objects.count() == 13
