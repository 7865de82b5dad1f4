"""The reviewer's look at what a waiting request would change: the record's current values next
to the proposed ones, and a link to the record in its own system.

A preview is help for the reviewer, never a condition of the decision: whatever goes wrong here
(the system is down, the record is gone, the connector raises) becomes "current value
unavailable" on the page, and the approve and reject buttons stay. Values pass the same
persistence rules as the request's own parameters, so a never-persist value shows only as its
fingerprint; everything is rendered as JSON text, so no value can fake another line.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from agents import context
from agents.connectors.base import ConnectorError, get_connector

if TYPE_CHECKING:
    from agents.models import ActionRequest

log = logging.getLogger(__name__)

SHOWN, NONE, UNAVAILABLE = "shown", "none", "unavailable"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Change:
    field: str
    current: str  # JSON text
    proposed: str  # JSON text
    changed: bool


@dataclass(frozen=True)
class Preview:
    status: str  # SHOWN, NONE (the connector offers no preview of this action) or UNAVAILABLE
    changes: list[Change] = field(default_factory=list)
    record_label: str = ""
    record_url: str = ""
    message: str = ""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _label(name: Any) -> str:
    text = str(name)
    return text if text.isprintable() else _json(text)


def record_url(config: Any, data_object: str, record: dict[str, Any]) -> str:
    """The record's address from the system's config: `record_urls: {data object: template}` or
    one `record_url` template, with `{id}`-style fields filled in (URL-quoted). Only http(s)
    addresses and paths on this site are used; anything else gives no link."""
    if not isinstance(config, dict):
        return ""
    templates = config.get("record_urls")
    template = templates.get(data_object) if isinstance(templates, dict) else None
    template = template or config.get("record_url")
    if not isinstance(template, str) or not template:
        return ""
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        value = record.get(match.group(1))
        if value is None or isinstance(value, (dict, list)):
            missing = True
            return ""
        return quote(str(value), safe="")

    url = _PLACEHOLDER.sub(fill, template)
    if missing or not (url.startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//"))):
        return ""
    return url


def preview_for(ar: ActionRequest) -> Preview:
    """The preview of one request. Never raises."""
    from governance.models import ServiceCredential, System

    try:
        system = System.objects.filter(name=ar.system).first()
        if system is None:
            return Preview(UNAVAILABLE, message="the system is not configured")
        credential = ServiceCredential.objects.filter(system=system).order_by("name").first()
        raw = get_connector(system.connector).preview(ar.action, dict(ar.params or {}), credential)
        if raw is None:
            return Preview(NONE)
        return _view(raw, system.config, ar.action)
    except ConnectorError as exc:
        return Preview(UNAVAILABLE, message=str(exc)[:300])
    except Exception as exc:  # noqa: BLE001 - a preview never blocks a decision
        log.warning("preview of %s failed: %s", ar.action, type(exc).__name__)
        return Preview(UNAVAILABLE, message=f"the connector failed ({type(exc).__name__})")


def _view(raw: Any, config: Any, action: str) -> Preview:
    if not isinstance(raw, dict) or not isinstance(raw.get("changes"), list):
        return Preview(UNAVAILABLE, message="the connector's preview is malformed")
    data_object = str(raw.get("data_object") or "")
    record: dict[str, Any] = raw["record"] if isinstance(raw.get("record"), dict) else {}
    policy = context.load_policy()
    changes = []
    for item in raw["changes"]:
        if not isinstance(item, dict) or "field" not in item:
            return Preview(UNAVAILABLE, message="the connector's preview is malformed")
        name = str(item["field"])
        # The same choke point as the request's stored parameters: never-persist values stay out.
        shown = context.persistable_params(
            {"current": {name: item.get("current")}, "proposed": {name: item.get("proposed")}},
            [data_object] if data_object else [],
            policy,
        )
        current, proposed = shown["current"][name], shown["proposed"][name]
        changes.append(Change(_label(name), _json(current), _json(proposed), current != proposed))
    record_id = record.get("id")
    label = f"{data_object} {record_id}" if record_id is not None else data_object
    return Preview(SHOWN, changes, _label(label), record_url(config, data_object, record))
