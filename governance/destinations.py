"""Authorized destinations: where a workflow's outputs may go, and at which sensitivity. Pure.

A session carries the highest sensitivity class of the data it has handled (a session fact).
An action that sends data out declares its egress parameters (`egress`: one `{type, param}` or
a list of them); each value such a parameter holds is a destination, which the workflow must
list, cleared for that class. An absent parameter, null, an empty string or an empty list is
no destination. What an unlisted (or uncleared) destination gets is the workflow's
`unlisted_destinations`: `refuse` (the default), or a tier, so that a person can approve it.

Types: `email` (matched by `email` and `email_domain` destinations), `webhook` (parsed scheme,
host, port and path prefix, as an HTTP client reads the URL), `ticket_queue`, and any other
name the policy uses (`iban`, `chat_channel`, `chat_user`), matched as exact text, or without
case when the destination says `case: insensitive`. The final answer goes to the session's
initiator, so it needs an `initiator` destination cleared for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ada_url import parse_url

from governance.conditions.values import MISSING, parse_path, resolve
from governance.facts import SENSITIVITIES, SessionFacts, sensitivity_rank
from governance.hosts import domain_matches, domain_name, host_of_url, hosts_in

BUILT_IN = ("email", "email_domain", "webhook", "ticket_queue", "initiator")
COMPATIBLE = {"email": ("email", "email_domain"), "webhook": ("webhook",), "ticket_queue": ("ticket_queue",)}
REFUSE = "refuse"
_URL_PARTS = ("protocol", "username", "password", "port", "pathname")


def level_name(rank: int) -> str:
    return SENSITIVITIES[min(max(rank, 0), len(SENSITIVITIES) - 1)]


def egress_params(egress: Any) -> tuple[tuple[str, str], ...]:
    """(type, param) of every egress parameter an action declares, from either stored form."""
    items = egress if isinstance(egress, list) else [egress] if egress else []
    return tuple((str(e.get("type", "")), str(e.get("param", ""))) for e in items if isinstance(e, Mapping))


def webhook_problem(value: Any) -> str | None:
    """Why a listed webhook cannot be matched safely (checked when a policy is applied)."""
    if not isinstance(value, str):
        return "a webhook destination is a URL"
    try:
        parts = parse_url(value, ("protocol", "hostname", "username", "password"))
    except ValueError:
        return f"{value!r} is not a URL: write the scheme, host and path (https://hooks.example.com/path)"
    if parts["protocol"] not in ("http:", "https:") or not parts["hostname"]:
        return f"{value!r} needs an http or https scheme and a host (https://hooks.example.com/path)"
    if parts["username"] or parts["password"]:
        return f"{value!r} must not carry credentials"
    return None


def _same_endpoint(listed: str, target: str) -> bool:
    """The target goes where the listed webhook goes, as a WHATWG parser (an HTTP client) reads
    both: same scheme, host and port, no credentials, and a path at or under the listed path.
    A listed value without a scheme is no URL and matches nothing."""
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


def matches(destination: Mapping[str, Any], kind: str, target: str) -> bool:
    """Whether one listed destination covers one target of an egress parameter of type `kind`."""
    dtype, value = destination.get("type"), str(destination.get("value", ""))
    if dtype not in COMPATIBLE.get(kind, (kind,)) or dtype == "initiator":
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
    if destination.get("case") == "insensitive":
        return target.strip().casefold() == value.strip().casefold()
    return target.strip() == value.strip()  # ticket_queue and the types a policy declares


@dataclass(frozen=True)
class DestinationOutcome:
    refused: str = ""  # why the call may not send where it asks (refuse it)
    unlisted: tuple[str, ...] = ()  # what the workflow's unlisted tier applies to
    tier: int = 0  # that tier, when there is something unlisted

    @property
    def checked(self) -> bool:
        return not self.refused and not self.unlisted


def check(
    destinations: tuple[Mapping[str, Any], ...],
    unlisted: str | int,
    workflow: str,
    action: str,
    egress: Any,
    params: Any,
    facts: SessionFacts | None,
) -> DestinationOutcome:
    """Where this call sends its data, judged against the workflow's destinations."""
    declared = egress_params(egress)
    if not declared:
        return DestinationOutcome()
    # What leaves is what the session has handled; unknown facts count as the most sensitive.
    level = sensitivity_rank(facts.sensitivity) if facts is not None else len(SENSITIVITIES) - 1
    problems: list[str] = []
    for kind, param in declared:
        try:
            segments = parse_path(param)
        except ValueError:
            return DestinationOutcome(refused=f"{action}: its egress parameter {param!r} cannot be read")
        if isinstance(params, dict) and params.get(segments[0][0]) is None:
            continue  # absent or null: no destination
        for target in resolve(params, segments):
            if target is MISSING or target is None or target == "":
                continue  # absent or empty: not a destination
            if not isinstance(target, str):
                return DestinationOutcome(refused=f"{action}: the destination in {param!r} is not text")
            matching = [d for d in destinations if matches(d, kind, target)]
            if not matching:
                problems.append(f"{target!r} is not an authorized destination of workflow {workflow!r}")
            elif max(sensitivity_rank(d.get("clearance", "internal")) for d in matching) < level:
                problems.append(
                    f"{target!r} is not cleared for {level_name(level)} data, which this session "
                    f"has handled (workflow {workflow!r})"
                )
    if not problems:
        return DestinationOutcome()
    if unlisted == REFUSE or not isinstance(unlisted, int):
        return DestinationOutcome(refused=problems[0])
    return DestinationOutcome(unlisted=tuple(problems), tier=unlisted)


def final_answer_problem(destinations: tuple[Mapping[str, Any], ...], workflow: str, session_level: str) -> str | None:
    initiator = [d for d in destinations if d.get("type") == "initiator"]
    if not initiator:
        return f"workflow {workflow!r} lists no 'initiator' destination for its final answer"
    if max(sensitivity_rank(d.get("clearance", "internal")) for d in initiator) < sensitivity_rank(session_level):
        return f"the initiator is not cleared for {session_level} data, which this session has handled"
    return None
