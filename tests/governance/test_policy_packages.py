"""Policy files that compose: a file owns one package, changes only that package's objects,
removes only with --allow-delete, archives a workflow that has history, and never plans
"delete everything" from a file that declares nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from agents import sessions
from audit.models import AuditEvent
from governance.models import ActionType, AgentIdentity, DataObject, System, Workflow
from governance.policyfile import apply_policy, export_yaml, from_database, from_document, load

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent
SUPPORT = (ROOT / "examples" / "policy.yaml").read_text()
REFUNDS = (ROOT / "examples" / "policy-refunds.yaml").read_text()


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def both(tmp_path) -> tuple[str, str]:
    support, refunds = write(tmp_path, "support.yaml", SUPPORT), write(tmp_path, "refunds.yaml", REFUNDS)
    assert run("policy_apply", support)[0] == 0
    assert run("policy_apply", refunds)[0] == 0
    return support, refunds


def test_it_applies_a_second_package_without_touching_the_first(both) -> None:
    support, refunds = both
    assert set(Workflow.objects.filter(package="refunds").values_list("name", flat=True)) == {
        "ticket-refund",
        "ticket-refund-trial",
    }
    assert Workflow.objects.filter(package="support-desk").count() == 3
    assert ActionType.objects.exclude(package="support-desk").count() == 0  # refunds uses them, owns none
    # Each file again: no changes, and neither deletes the other's objects.
    for path in (support, refunds):
        code, out, _ = run("policy_apply", path)
        assert code == 0 and "No changes" in out, out


def test_a_file_cannot_change_another_packages_objects(both, tmp_path) -> None:
    doc = yaml.safe_load(REFUNDS)
    doc["action_types"] = [
        {"name": "crm.get_customer", "system": "crm", "mode": "read", "data_objects": ["crm.customer"]}
    ]
    path = write(tmp_path, "steal.yaml", yaml.safe_dump(doc, sort_keys=False))
    code, _, err = run("policy_apply", path, "--dry-run")
    assert code == 1
    assert "action_types[0].name: action type 'crm.get_customer' belongs to package 'support-desk'" in err
    assert f"{path}:" in err  # with its place in the file
    # A file without `package:` owns the default package, so it cannot take them either.
    bare = write(tmp_path, "bare.yaml", "version: 1\nlists: {company_domains: [x.example]}\n")
    code, _, err = run("policy_apply", bare)
    assert code == 1 and "belongs to package 'support-desk'" in err


def test_removing_needs_allow_delete_and_lists_the_removals(both, tmp_path) -> None:
    doc = yaml.safe_load(REFUNDS)
    doc["workflows"] = [w for w in doc["workflows"] if w["name"] != "ticket-refund-trial"]
    doc["agents"][0]["workflows"] = ["ticket-refund"]
    path = write(tmp_path, "less.yaml", yaml.safe_dump(doc, sort_keys=False))
    before = AuditEvent.objects.count()
    for extra in ((), ("--dry-run",)):
        code, out, err = run("policy_apply", path, *extra)
        assert code == 1
        assert "- delete workflow ticket-refund-trial" in out
        assert "1 removal(s) need --allow-delete: delete workflow ticket-refund-trial" in err
    assert Workflow.objects.filter(name="ticket-refund-trial").exists() and AuditEvent.objects.count() == before
    code, out, _ = run("policy_apply", path, "--allow-delete")
    assert code == 0 and "Applied." in out
    assert not Workflow.objects.filter(name="ticket-refund-trial").exists()
    assert AuditEvent.objects.filter(kind="policy.deleted", details__name="ticket-refund-trial").exists()


def test_a_workflow_with_history_is_archived_and_starts_no_session(both, tmp_path) -> None:
    session, _ = sessions.start("ticket-refund-bot", "ticket-refund", "test", "user:dana", "Refund T-2002 for C-1002")
    doc = yaml.safe_load(REFUNDS)
    doc["workflows"] = [w for w in doc["workflows"] if w["name"] != "ticket-refund"]
    doc["agents"][0]["workflows"] = ["ticket-refund-trial"]
    path = write(tmp_path, "archive.yaml", yaml.safe_dump(doc, sort_keys=False))
    code, out, _ = run("policy_apply", path, "--allow-delete")
    assert code == 0, out
    assert "- archive workflow ticket-refund (it has sessions" in out
    workflow = Workflow.objects.get(name="ticket-refund")
    assert workflow.archived_at is not None and not workflow.agents.exists() and not workflow.tiers.exists()
    session.refresh_from_db()
    assert session.status == "terminated"  # its agent lost the workflow: the live session ended
    assert AuditEvent.objects.filter(kind="policy.archived", details__name="ticket-refund").exists()
    with pytest.raises(sessions.SessionRefused, match="archived"):
        sessions.start("ticket-refund-bot", workflow, "test", "user:dana", "Refund T-2002 for C-1002")
    assert "ticket-refund\n" not in export_yaml("refunds") and "ticket-refund-trial" in export_yaml("refunds")
    assert run("policy_apply", path)[1].startswith("No changes")
    # Naming it again restores it, history and all.
    code, out, _ = run("policy_apply", both[1])
    assert code == 0 and "+ create workflow ticket-refund" in out
    workflow.refresh_from_db()
    assert workflow.archived_at is None and workflow.sessions.count() == 1


def test_a_file_that_declares_nothing_never_deletes_everything(tmp_path, example_state) -> None:
    empty = write(tmp_path, "empty.yaml", "version: 1\n")
    unpackaged = {kind: {n: {**s, "package": ""} for n, s in items.items()} for kind, items in example_state.items()}
    apply_policy(unpackaged, actor="test:setup")
    for extra in ((), ("--dry-run",), ("--allow-delete",)):
        code, out, err = run("policy_apply", empty, *extra)
        assert code == 1, (extra, out)
        assert "declares no objects" in err and "refused even with --allow-delete" in err
    assert Workflow.objects.count() == 3
    # The same file against a database whose objects all belong to packages changes nothing.
    apply_policy(from_document(load(SUPPORT)), actor="t", package="support-desk")
    assert run("policy_apply", empty) == (0, "No changes. The database already matches the policy.\n", "")
    code, _, err = run("policy_apply", write(tmp_path, "p.yaml", "version: 1\npackage: support-desk\n"))
    assert code == 1 and "every object of package 'support-desk'" in err


def test_removing_what_another_package_uses_is_refused(both, tmp_path) -> None:
    doc = yaml.safe_load(SUPPORT)
    doc["action_types"] = [a for a in doc["action_types"] if a["name"] != "crm.issue_refund"]
    doc["workflows"][0]["tiers"] = [t for t in doc["workflows"][0]["tiers"] if t["action"] != "crm.issue_refund"]
    path = write(tmp_path, "support.yaml", yaml.safe_dump(doc, sort_keys=False))
    code, _, err = run("policy_apply", path, "--allow-delete")
    assert code == 1
    assert (
        "unknown action 'crm.issue_refund'" in err
        and "package refunds still needs what this file changes or removes" in err
    )
    assert ActionType.objects.filter(name="crm.issue_refund").exists()


def test_a_package_file_adopts_objects_of_no_package(db, tmp_path) -> None:
    system = System.objects.create(name="legacy", connector="http")
    DataObject.objects.create(name="legacy.thing", system=system)
    text = (
        "version: 1\npackage: legacy-team\nsystems: [{name: legacy, connector: http}]\n"
        "data_objects: [{name: legacy.thing, system: legacy}]\n"
    )
    code, out, _ = run("policy_apply", write(tmp_path, "legacy.yaml", text))
    assert code == 0 and "~ update system legacy (package)" in out and '    package: "" -> "legacy-team"' in out
    assert System.objects.get(name="legacy").package == "legacy-team"


def test_round_trip_of_every_package(both, tmp_path) -> None:
    for package in ("support-desk", "refunds"):
        exported = write(tmp_path, f"{package}.yaml", "")
        code, _, err = run("policy_export", "--package", package, "-o", exported)
        assert code == 0 and "left out: other packages" in err
        text = Path(exported).read_text()
        assert f"package: {package}" in text
        code, out, _ = run("policy_apply", exported)
        assert (code, out) == (0, "No changes. The database already matches the policy.\n")
    refunds = yaml.safe_load(Path(tmp_path / "refunds.yaml").read_text())
    workflow = next(w for w in refunds["workflows"] if w["name"] == "ticket-refund")
    assert workflow["out_of_scope"] == 3 and workflow["scope_template"]["bind"]["ticket_id"]
    trial = next(w for w in refunds["workflows"] if w["name"] == "ticket-refund-trial")
    assert trial["mode"] == "log_only"
    with pytest.raises(CommandError, match="no object belongs to package 'nope'"):
        run("policy_export", "--package", "nope")


def test_the_provisioning_ui_edits_keep_every_package(both) -> None:
    from governance.actors import Actor
    from governance.services import agent_identity_create

    actor = Actor.cli("ops")
    agent_identity_create(actor=actor, name="helper-bot", owner="ops@example.com", workflows=["ticket-refund"])
    assert AgentIdentity.objects.get(name="helper-bot").package == ""
    assert Workflow.objects.filter(package="refunds").count() == 2
    assert from_database()["agents"]["helper-bot"]["workflows"] == ["ticket-refund"]


def test_changing_what_another_package_relies_on_is_refused(both, tmp_path) -> None:
    doc = yaml.safe_load(SUPPORT)
    refund = next(a for a in doc["action_types"] if a["name"] == "crm.issue_refund")
    refund["data_objects"] = ["crm.refund", "crm.note"]  # refund-triage grants both; ticket-refund does not
    path = write(tmp_path, "support.yaml", yaml.safe_dump(doc, sort_keys=False))
    code, out, err = run("policy_apply", path)
    assert code == 1 and "~ update action type crm.issue_refund" in out
    assert "workflows[ticket-refund].tiers[1].action: 'crm.issue_refund' needs write on crm.note" in err
    assert "package refunds still needs" in err
