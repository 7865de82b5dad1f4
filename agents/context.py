"""Context security: what of a tool result may enter the model's context, and for how long.

Each field of a connector's result has a data type (DataObject.fields); the ContextRule of
that data type decides how its value is shown (full, redacted, summarized, never), when it
is cleared (after the step that showed it, or at the end of the session), and whether it
may be persisted. A value that must never be persisted enters the stored conversation,
and so the model, only as a keyed fingerprint. A field whose data type has no rule is
redacted (fail closed); a field with no data type is an identifier and passes through.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from audit.canonical import fingerprint

CLEARED = "[cleared after step]"

_SSN = re.compile(r"\b\d{3}-\d{2}-(\d{4})\b")
_CARD = re.compile(r"\b(?:\d[ -]?){9,15}(\d{4})\b")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


@dataclass(frozen=True)
class Rule:
    handling: str = "redacted"
    clear: str = "session"
    persist: bool = True


DEFAULT_RULE = Rule()


@dataclass(frozen=True)
class ContextPolicy:
    fields: dict[str, dict[str, str]]  # data object -> field -> data type
    rules: dict[str, Rule]  # data type -> rule

    def rule_for(self, data_object: str, name: str) -> Rule | None:
        data_type = self.fields.get(data_object, {}).get(name)
        if data_type is None:
            return None
        return self.rules.get(data_type, DEFAULT_RULE)

    def never_persist_fields(self, data_objects: list[str] | tuple[str, ...]) -> set[str]:
        return {
            name
            for obj in data_objects
            for name, dt in self.fields.get(obj, {}).items()
            if not self.rules.get(dt, DEFAULT_RULE).persist
        }


_CACHE_SECONDS = 2.0
_cache: tuple[float, ContextPolicy] | None = None


def load_policy() -> ContextPolicy:
    """The context rules, re-read at most every two seconds (and at once in the process that
    changes them: governance.apps drops the cache on save)."""
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < _CACHE_SECONDS:
        return _cache[1]
    from governance.models import ContextRule, DataObject

    rules = {r.data_type: Rule(r.handling, r.clear, r.persist) for r in ContextRule.objects.all()}
    fields = {name: dict(f or {}) for name, f in DataObject.objects.values_list("name", "fields")}
    _cache = (now, ContextPolicy(fields=fields, rules=rules))
    return _cache[1]


def forget_policy(*args: object, **kwargs: object) -> None:
    global _cache
    _cache = None


def redact(value: Any) -> Any:
    """Mask a value, keeping just enough to recognise it (the last four digits, the domain)."""
    if isinstance(value, str):
        masked = _SSN.sub(lambda m: f"***-**-{m.group(1)}", value)
        masked = _CARD.sub(lambda m: f"****{m.group(1)}", masked)
        masked = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", masked)
        return masked if masked != value else "[redacted]"
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    return None if value is None else "[redacted]"


def summarize(value: Any) -> Any:
    """The same shape with the values dropped."""
    if isinstance(value, dict):
        return {k: summarize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [summarize(v) for v in value]
    if value is None:
        return None
    if isinstance(value, bool):
        return "<boolean>"
    if isinstance(value, (int, float)):
        return "<number>"
    return "<text>"


def _apply_rule(rule: Rule, value: Any) -> tuple[bool, Any]:
    """(keep, shown value)."""
    if rule.handling == "never":
        return False, None
    if not rule.persist:
        return True, fingerprint(value)
    if rule.handling == "full":
        return True, value
    if rule.handling == "summarized":
        return True, summarize(value)
    return True, redact(value)


def _filter_record(record: Any, data_object: str, policy: ContextPolicy) -> Any:
    if isinstance(record, list):
        return [_filter_record(r, data_object, policy) for r in record]
    if not isinstance(record, dict):
        return record
    view: dict[str, Any] = {}
    for name, value in record.items():
        rule = policy.rule_for(data_object, name)
        if rule is None:
            view[name] = value
            continue
        keep, shown = _apply_rule(rule, value)
        if keep:
            view[name] = shown
    return view


def filter_result(result: Any, policy: ContextPolicy) -> Any:
    """The model's (and the stored conversation's) view of a connector result."""
    if not isinstance(result, dict) or not isinstance(result.get("data_object"), str):
        # An untyped result cannot be classified, so none of its values pass.
        return {"data": summarize(result)}
    data_object = str(result["data_object"])
    return {"data_object": data_object, "data": _filter_record(result.get("data"), data_object, policy)}


def step_paths(view: Any, policy: ContextPolicy) -> list[list[Any]]:
    """Where in a filtered result the values to clear after the step are."""
    if not isinstance(view, dict) or not isinstance(view.get("data_object"), str):
        return []
    data_object, paths = view["data_object"], []

    def walk(node: Any, path: list[Any]) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, [*path, i])
        elif isinstance(node, dict):
            for name in node:
                rule = policy.rule_for(data_object, name)
                if rule is not None and rule.clear == "step":
                    paths.append([*path, name])

    walk(view.get("data"), ["data"])
    return paths


def persistable_params(params: Any, data_objects: list[str] | tuple[str, ...], policy: ContextPolicy) -> Any:
    """The one choke point for what Warden stores of a value it did not classify (tool-call
    parameters, results reported by a runtime, tool inputs in the stored conversation): every
    entry under a never-persist key, at any depth, in lists too, and whatever its case, is
    replaced by its fingerprint. The keys are the never-persist data types, the fields mapped to
    them in any data object, and the action's own never-persist fields."""
    from audit.redaction import never_persist_keys, scrub

    keys = never_persist_keys() | {name.lower() for name in policy.never_persist_fields(data_objects)}
    return scrub(params, keys) if keys else params


def clear_paths(document: Any, paths: list[list[Any]]) -> Any:
    """Replace the values at `paths` with a marker (for data cleared after its step)."""
    for path in paths:
        node = document
        try:
            for key in path[:-1]:
                node = node[key]
            if path[-1] in node if isinstance(node, dict) else 0 <= path[-1] < len(node):
                node[path[-1]] = CLEARED
        except (KeyError, IndexError, TypeError):
            continue
    return document


def json_text(value: Any) -> str:
    """Canonical JSON text (RFC 8785) of a value, for sealing and re-reading parameters exactly."""
    from audit.canonical import canonical_json

    return canonical_json(value).decode()


def parse_json_text(text: str) -> Any:
    import json

    return json.loads(text)


def describe_access(view: Any) -> dict[str, Any]:
    """What the audit trail records about data handed to the model: the type, the count and the
    field names, never the values."""
    if not isinstance(view, dict):
        return {}
    data = view.get("data")
    records = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    fields = sorted({k for r in records if isinstance(r, dict) for k in r})
    data_object = view.get("data_object")
    return {
        "data_object": data_object if isinstance(data_object, str) else "",
        "records": len(records),
        "fields": fields,
    }
