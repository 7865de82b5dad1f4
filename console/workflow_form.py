"""The workflow editor's form: what the admin typed, read into a workflow update, and every
problem reported next to the row it concerns, in the editor's words.

Nothing here decides whether a workflow is valid: `governance.services.workflow_update`
validates the whole policy as `policy_apply` does. This module only reads the form (numbers,
the condition rows, the advanced JSON) and translates the policy's error paths
(`workflows[1].tiers[0].conditions[0].tier`) back to the rows the admin sees.

Conditions: a flat condition (`param`, `op`, `value` or `list`, `tier`) is one row of the
structured editor. Anything else (nested `all`/`any`/`not`, keys the editor does not know)
stays in the row's advanced JSON box, untouched, and is saved after the structured rows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from governance.conditions import LIST_OPERATORS, OPERATORS

FLAT_KEYS = frozenset({"param", "op", "value", "list", "tier"})
OPERATOR_WORDS = {
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "eq": "equals",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "matches": "matches the pattern",
    "not_matches": "does not match the pattern",
    "domain_in": "has a domain in",
    "domain_not_in": "has a domain not in",
    "present": "is present",
}
assert set(OPERATOR_WORDS) == set(OPERATORS)  # the editor offers every operator the policy knows

_WHERE = re.compile(
    r"^workflows\[(?P<wf>\d+)\]\.(?:(?P<kind>tiers|access)\[(?P<row>\d+)\](?:\.conditions\[(?P<cond>\d+)\])?"
    r"|(?P<top>[a-z_]+))(?P<rest>(?:\.[A-Za-z_]+|\[\d+\])*): (?P<message>.*)$",
    re.S,
)
_FIELD_WORDS = {"action": "action", "tier": "tier", "quorum": "quorum", "param": "parameter", "op": "operator"}
_TOP_WORDS = {"max_session_seconds": "Maximum session duration", "destinations": "Destinations"}


def is_flat(condition: Any) -> bool:
    """A condition the structured editor shows as one row without losing anything."""
    if not isinstance(condition, dict) or not {"param", "op"} <= set(condition) or set(condition) - FLAT_KEYS:
        return False
    value = condition.get("value")
    scalar = (str, int, float, bool, type(None))
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


def value_text(op: str, value: Any) -> str:
    """How a condition's value appears in its text box: as typed where that reads back the same
    (EUR, 100, a pattern, `a.com, b.com`), else as JSON ("100" for the text 100)."""
    candidates = []
    if isinstance(value, str):
        candidates.append(value)
    if op in LIST_OPERATORS and isinstance(value, list) and all(isinstance(v, str) for v in value):
        candidates.append(", ".join(value))
    for text in candidates:
        if _same(parse_value(op, text), value):
            return text
    return json.dumps(value, ensure_ascii=False)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (Python's True == 1 and 1 == 1.0 do not count)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def parse_value(op: str, text: str) -> Any:
    """The value typed in a condition row: a regular expression as typed for `matches`; a list
    (JSON, or separated by commas) for the list operators; otherwise JSON if it reads as JSON
    (100, true, "100"), else the text itself (EUR)."""
    if op == "matches":
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = text
    if op in LIST_OPERATORS and not isinstance(value, list):
        value = [part.strip() for part in text.split(",") if part.strip()]
    return value


@dataclass
class ConditionRow:
    param: str = ""
    op: str = ""
    value: str = ""
    list_name: str = ""
    tier: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        return not (self.param or self.op or self.value or self.list_name or self.tier)


@dataclass
class TierRow:
    action: str = ""
    tier: str = ""
    quorum: str = "1"
    conditions: list[ConditionRow] = field(default_factory=list)
    advanced: str = "[]"  # JSON: the conditions the structured rows cannot show
    errors: list[str] = field(default_factory=list)
    advanced_errors: list[str] = field(default_factory=list)
    # where each saved condition came from: ("row", index in conditions) or ("json", index)
    sources: list[tuple[str, int]] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        return not self.action


@dataclass
class WorkflowForm:
    version: str = ""
    max_session_seconds: str = ""
    grants: set[tuple[str, str]] = field(default_factory=set)
    tiers: list[TierRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # not about one row
    field_errors: dict[str, list[str]] = field(default_factory=dict)  # max_session_seconds, grant rows

    @property
    def has_errors(self) -> bool:
        return bool(
            self.errors
            or self.field_errors
            or any(t.errors or t.advanced_errors or any(c.errors for c in t.conditions) for t in self.tiers)
        )

    def with_blank_rows(self) -> WorkflowForm:
        """One empty condition row per tier and one empty tier row, to add to (no script needed)."""
        for row in self.tiers:
            if not row.conditions or not row.conditions[-1].blank:
                row.conditions.append(ConditionRow())
        if not self.tiers or not self.tiers[-1].blank:
            self.tiers.append(TierRow(conditions=[ConditionRow()]))
        return self


def from_workflow(workflow: Any) -> WorkflowForm:
    form = WorkflowForm(
        version=str(workflow.version),
        max_session_seconds=str(workflow.max_session_seconds),
        grants=set(workflow.grants.values_list("data_object__name", "mode")),
    )
    for assignment in workflow.tiers.select_related("action_type").order_by("action_type__name"):
        conditions = list(assignment.conditions or [])
        form.tiers.append(
            TierRow(
                action=assignment.action_type.name,
                tier=str(assignment.tier),
                quorum=str(assignment.quorum),
                conditions=[
                    ConditionRow(
                        param=str(c["param"]),
                        op=str(c["op"]),
                        value="" if "value" not in c else value_text(str(c["op"]), c["value"]),
                        list_name=str(c.get("list") or ""),
                        tier=str(c.get("tier", "")),
                    )
                    for c in conditions
                    if is_flat(c)
                ],
                advanced=json.dumps([c for c in conditions if not is_flat(c)], ensure_ascii=False, indent=1)
                if any(not is_flat(c) for c in conditions)
                else "[]",
            )
        )
    return form.with_blank_rows()


def _whole(text: str) -> int | None:
    try:
        return int(text.strip())
    except (ValueError, AttributeError):
        return None


def from_post(post: Any) -> WorkflowForm:
    """The form as submitted. Rows are parallel lists; a condition row names its tier row in
    `cond_row`. The older form (`tier_conditions` as the whole JSON list) reads the same way."""
    form = WorkflowForm(version=post.get("version", ""), max_session_seconds=post.get("max_session_seconds", ""))
    form.grants = {
        (parts[2], parts[1])
        for parts in (key.split(":", 2) for key in post if key.startswith("grant:"))
        if len(parts) == 3 and parts[1] and parts[2]
    }
    actions, tiers, quorums = post.getlist("tier_action"), post.getlist("tier_tier"), post.getlist("tier_quorum")
    advanced = post.getlist("tier_conditions")
    for i, action in enumerate(actions):
        form.tiers.append(
            TierRow(
                action=action.strip(),
                tier=tiers[i] if i < len(tiers) else "",
                quorum=quorums[i] if i < len(quorums) else "1",
                advanced=advanced[i] if i < len(advanced) else "[]",
            )
        )
    columns = [post.getlist(f"cond_{name}") for name in ("row", "param", "op", "value", "list", "tier")]
    for row, param, op, value, list_name, tier in zip(*columns):
        index = _whole(row)
        if index is None or not 0 <= index < len(form.tiers):
            continue
        form.tiers[index].conditions.append(
            ConditionRow(param.strip(), op.strip(), value, list_name.strip(), tier.strip())
        )
    return form


def to_update(form: WorkflowForm) -> tuple[list[dict[str, str]], list[dict[str, Any]], int, int]:
    """(access, tiers, max_session_seconds, version) for the service; row errors for what cannot
    even be read (the service then is not called: check `form.has_errors`)."""
    access = [{"data_object": obj, "mode": mode} for obj, mode in sorted(form.grants)]
    seconds, version = _whole(form.max_session_seconds), _whole(form.version)
    if seconds is None:
        form.field_errors.setdefault("max_session_seconds", []).append("enter a whole number of seconds")
    if version is None:
        form.errors.append("the form lost its version: reload the page and make your change again")
    tiers = []
    for row in form.tiers:
        if row.blank:
            if row.tier.strip() or any(not c.blank for c in row.conditions):
                row.errors.append("choose the action this row is for")
            continue
        tier, quorum = _whole(row.tier), _whole(row.quorum or "1")
        if tier is None:
            row.errors.append("the tier is a whole number from 1 to 4")
        if quorum is None:
            row.errors.append("the quorum is a whole number (how many reviewers must approve)")
        conditions: list[Any] = []
        row.sources = []
        for k, cond in enumerate(row.conditions):
            if cond.blank:
                continue
            parsed = _condition(cond)
            if parsed is not None:
                conditions.append(parsed)
                row.sources.append(("row", k))
        try:
            kept = json.loads(row.advanced or "[]")
        except (ValueError, RecursionError):
            kept = None
        if not isinstance(kept, list):
            row.advanced_errors.append("the advanced conditions must be a JSON list, like [] or [{...}]")
            kept = []
        for j, item in enumerate(kept):
            conditions.append(item)
            row.sources.append(("json", j))
        tiers.append({"action": row.action, "tier": tier, "quorum": quorum, "conditions": conditions})
    return access, tiers, seconds or 0, version or 0


def _condition(cond: ConditionRow) -> dict[str, Any] | None:
    if not cond.param:
        cond.errors.append("name the parameter this condition tests")
    if cond.op not in OPERATORS:
        cond.errors.append("choose an operator")
    tier = _whole(cond.tier)
    if tier is None:
        cond.errors.append("choose the tier this condition raises the action to")
    if cond.errors:
        return None
    spec: dict[str, Any] = {"param": cond.param, "op": cond.op, "tier": tier}
    if cond.list_name:
        spec["list"] = cond.list_name
    elif cond.op != "present":
        spec["value"] = parse_value(cond.op, cond.value)
    return spec


def place_errors(form: WorkflowForm, message: str, workflow_index: int) -> None:
    """Put each of the policy's errors (joined with "; ") next to the row it concerns."""
    # The policy sorts a workflow's tiers by action and its grants by data object and mode:
    # map those positions back to the rows on the page.
    rows = [row for row in form.tiers if not row.blank]
    order = sorted(range(len(rows)), key=lambda i: rows[i].action)
    grants = sorted(form.grants)
    for error in message.split("; "):
        match = _WHERE.match(error)
        if match is None or int(match["wf"]) != workflow_index:
            form.errors.append(error)
            continue
        text = match["message"]
        if match["top"]:
            if match["top"] == "max_session_seconds":
                form.field_errors.setdefault("max_session_seconds", []).append(text)
            else:
                form.errors.append(f"{_TOP_WORDS.get(match['top'], match['top'].replace('_', ' '))}: {text}")
            continue
        index = int(match["row"])
        if match["kind"] == "access":
            if index < len(grants):
                obj, mode = grants[index]
                form.field_errors.setdefault(f"grant:{obj}", []).append(f"{mode}: {text}")
            else:
                form.errors.append(f"Access map: {text}")
            continue
        if index >= len(order):
            form.errors.append(text)
            continue
        row = rows[order[index]]
        rest = match["rest"].lstrip(".")
        if match["cond"] is None:
            words = _FIELD_WORDS.get(rest.split(".")[0].split("[")[0], "")
            row.errors.append(f"{words.capitalize()}: {text}" if words and words not in text else text)
            continue
        k = int(match["cond"])
        where = row.sources[k] if k < len(row.sources) else ("json", -1)
        if where[0] == "row":
            words = _FIELD_WORDS.get(rest, rest)
            row.conditions[where[1]].errors.append(f"{words}: {text}" if rest and words not in text else text)
        else:
            at = f" at {rest}" if rest else ""
            row.advanced_errors.append(f"condition {where[1] + 1} of the advanced JSON{at}: {text}")
