"""Policy as code: read a YAML policy, plan it against the database, apply it, export it."""

from __future__ import annotations

import yaml

from governance.policy import WorkflowSnapshot, build_snapshot
from governance.policyfile.apply import Change, apply_policy, plan, summary
from governance.policyfile.load import PolicyError, load, validate
from governance.policyfile.state import from_database, from_document, packages, to_document


def snapshot_from_state(state: dict, workflow: str) -> WorkflowSnapshot:
    """The decision snapshot of one workflow of a normalized policy, without the database."""
    lists = {name: spec["values"] for name, spec in state["lists"].items()}
    sensitivity = {name: spec["sensitivity"] for name, spec in state["data_objects"].items()}
    return build_snapshot({"name": workflow, **state["workflows"][workflow]}, state["action_types"], lists, sensitivity)


def export_yaml(package: str | None = None, *, state: dict | None = None) -> str:
    """One package of the current configuration as a policy file that policy_apply accepts
    unchanged. By default the only package there is, else the objects of no package."""
    header = "# Warden policy, exported from the database. Apply with: manage.py policy_apply FILE\n"
    state = from_database() if state is None else state
    if package is None:
        present = packages(state)
        package = next(iter(present)) if len(present) == 1 else ""
    document = to_document(state, package=package)
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


__all__ = [
    "Change",
    "PolicyError",
    "apply_policy",
    "export_yaml",
    "from_database",
    "from_document",
    "load",
    "plan",
    "snapshot_from_state",
    "summary",
    "to_document",
    "validate",
]
