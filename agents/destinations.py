"""Authorized destinations: where a workflow's outputs may go, and at which sensitivity.

A session carries the highest sensitivity class of the data it has been given. An action
that sends data out (its ActionType declares `egress`) may only address destinations the
workflow lists, and only those cleared for that class. The final answer goes to the
session's initiator, so it needs an `initiator` destination cleared for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ada_url import parse_url

from governance.conditions import MISSING, parse_path, resolve
from governance.hosts import domain_matches, domain_name, host_of_url, hosts_in
from governance.models import Sensitivity
from governance.policy import ActionSpec, WorkflowSnapshot

COMPATIBLE = {"email": ("email", "email_domain"), "webhook": ("webhook",), "ticket_queue": ("ticket_queue",)}


def _matches(destination: Mapping[str, Any], kind: str, target: str) -> bool:
    dtype, value = destination.get("type"), str(destination.get("value", ""))
    if dtype not in COMPATIBLE.get(kind, ()):
        return False
    if dtype == "email":
        return target.strip().casefold() == value.casefold()
    if dtype == "email_domain":
        # Every host the address may be read as (governance.hosts reads generously) must be one.
        found, listed = hosts_in(target), domain_name(value)
        if not found or listed is None or len(found) != 1 or "@" not in target:
            return False
        return domain_matches(found[0], frozenset({listed}))
    if dtype == "webhook":
        return _same_endpoint(value, target)
    return target == value  # ticket_queue


_URL_PARTS = ("protocol", "username", "password", "port", "pathname")


def _same_endpoint(listed: str, target: str) -> bool:
    """The target goes where the listed webhook goes, as a WHATWG parser (an HTTP client) reads
    both: same scheme, host and port, no credentials, and a path at or under the listed path."""
    try:
        want, got = parse_url(listed, _URL_PARTS), parse_url(target, _URL_PARTS)
    except ValueError:
        return False
    host = host_of_url(target)
    if host is None or host != host_of_url(listed) or got["username"] or got["password"]:
        return False
    if (got["protocol"], got["port"]) != (want["protocol"], want["port"]):
        return False
    base = want["pathname"] or "/"
    return got["pathname"] == base or got["pathname"].startswith(base if base.endswith("/") else base + "/")


def level_name(rank: int) -> str:
    return Sensitivity.values[min(rank, len(Sensitivity.values) - 1)]


def egress_problem(snap: WorkflowSnapshot, spec: ActionSpec, params: Any, session_level: str) -> str | None:
    """Why this call may not send its data where it asks, or None."""
    if not spec.egress:
        return None
    kind = spec.egress.get("type", "")
    # What leaves is what the session has handled: its class is the session's, not the message type's.
    level = Sensitivity.rank(session_level)
    targets = list(resolve(params, parse_path(spec.egress.get("param", ""))))
    if not targets or any(t is MISSING or not isinstance(t, str) for t in targets):
        return f"{spec.name}: the destination parameter is missing or not text"
    for target in targets:
        matching = [d for d in snap.destinations if _matches(d, kind, target)]
        if not matching:
            return f"{target!r} is not an authorized destination of workflow {snap.name!r}"
        if max(Sensitivity.rank(d.get("clearance", "internal")) for d in matching) < level:
            return (
                f"{target!r} is not cleared for {level_name(level)} data, which this session "
                f"has handled (workflow {snap.name!r})"
            )
    return None


def final_answer_problem(snap: WorkflowSnapshot, session_level: str) -> str | None:
    initiator = [d for d in snap.destinations if d.get("type") == "initiator"]
    if not initiator:
        return f"workflow {snap.name!r} lists no 'initiator' destination for its final answer"
    if max(Sensitivity.rank(d.get("clearance", "internal")) for d in initiator) < Sensitivity.rank(session_level):
        return f"the initiator is not cleared for {session_level} data, which this session has handled"
    return None
