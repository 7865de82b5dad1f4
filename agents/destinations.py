"""Authorized destinations, as the runtime knew them. The check itself moved into governance
(governance.destinations), so that decide() gives the destination outcome too; these names
stay for callers that knew them here."""

from __future__ import annotations

from typing import Any

from governance import destinations as _dest
from governance.facts import SessionFacts
from governance.policy import ActionSpec, WorkflowSnapshot

COMPATIBLE = _dest.COMPATIBLE
level_name = _dest.level_name
_matches = _dest.matches
_same_endpoint = _dest._same_endpoint


def egress_problem(snap: WorkflowSnapshot, spec: ActionSpec, params: Any, session_level: str) -> str | None:
    """Why this call may not send its data where it asks, or None (unlisted destinations refused)."""
    outcome = _dest.check(
        snap.destinations, _dest.REFUSE, snap.name, spec.name, spec.egress, params, SessionFacts(session_level)
    )
    return outcome.refused or None


def final_answer_problem(snap: WorkflowSnapshot, session_level: str) -> str | None:
    return _dest.final_answer_problem(snap.destinations, snap.name, session_level)
