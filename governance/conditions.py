"""Tier conditions: a parameter path, an operator and a value that together may raise a tier.

The rule that keeps this safe, enforced in one place (`Condition.operand`): a condition whose
parameter is missing, reached through something that is not an object or list, or of a JSON
type the operator does not compare with the condition's value, counts as holding. Uncertainty
raises the tier; it never lowers it. JSON types are JSON's: booleans are never numbers (Python's
`True == 1` is never used), and a number that is not finite is of no type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from governance.hosts import domain_matches, domain_name, hosts_in
from governance.regex import Regex, RegexError, compile_regex

OPERATORS = (
    "gt",
    "gte",
    "lt",
    "lte",
    "eq",
    "ne",
    "in",
    "not_in",
    "matches",
    "domain_in",
    "domain_not_in",
    "present",
)
LIST_OPERATORS = {"in", "not_in", "domain_in", "domain_not_in"}
NUMERIC_OPERATORS = {"gt", "gte", "lt", "lte"}
DOMAIN_OPERATORS = {"domain_in", "domain_not_in"}

domains_in = hosts_in  # the name callers knew before host reading moved to governance.hosts

_SEGMENT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-]*)(\[\*\])?$")


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


MISSING = _Sentinel("MISSING")  # the path ends at an object without the key
THROUGH_NON_OBJECT = _Sentinel("THROUGH_NON_OBJECT")  # the path runs through a value it cannot enter
UNCOMPARABLE = _Sentinel("UNCOMPARABLE")  # the operator does not compare this value


def parse_path(path: str) -> tuple[tuple[str, bool], ...]:
    """'recipients[*]' -> (('recipients', True),); 'address.country' -> (('address', False), ('country', False)).

    Raises ValueError on a malformed path.
    """
    if not isinstance(path, str) or not path:
        raise ValueError("a parameter path must be a non-empty string")
    segments = []
    for part in path.split("."):
        match = _SEGMENT_RE.match(part)
        if not match:
            raise ValueError(f"malformed parameter path {path!r} (use name, name[*] and dots)")
        segments.append((match.group(1), match.group(2) is not None))
    return tuple(segments)


def resolve(value: Any, segments: tuple[tuple[str, bool], ...]) -> Iterator[Any]:
    """Every value the path reaches; MISSING where a key is absent, THROUGH_NON_OBJECT where the
    path meets a value that is not an object (or, at `[*]`, not a list)."""
    if not segments:
        yield value
        return
    (name, star), rest = segments[0], segments[1:]
    if not isinstance(value, dict):
        yield THROUGH_NON_OBJECT
        return
    if name not in value:
        yield MISSING
        return
    child = value[name]
    if not star:
        yield from resolve(child, rest)
        return
    if not isinstance(child, list):
        yield THROUGH_NON_OBJECT
        return
    for element in child:
        yield from resolve(element, rest)


def json_type(value: Any) -> str | None:
    """The JSON type of a value; None for what JSON cannot hold (NaN, infinities, other objects)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    if isinstance(value, int):
        return "number"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else None
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None


def json_key(value: Any) -> Any:
    """A hashable form in which two values are equal exactly when they are equal JSON values
    (1 and 1.0 are; true and 1 are not). UNCOMPARABLE when the value is not JSON."""
    kind = json_type(value)
    if kind is None:
        return UNCOMPARABLE
    if kind == "array":
        items = tuple(json_key(v) for v in value)
        return UNCOMPARABLE if any(i is UNCOMPARABLE for i in items) else (kind, items)
    if kind == "object":
        members = frozenset((k, json_key(v)) for k, v in value.items())
        return UNCOMPARABLE if any(m[1] is UNCOMPARABLE for m in members) else (kind, members)
    return (kind, value)


def _hosts_or_uncomparable(value: str) -> Any:
    hosts = hosts_in(value)
    return UNCOMPARABLE if hosts is None else hosts


@dataclass(frozen=True)
class Condition:
    param: str
    op: str
    tier: int
    value: Any = None
    list_name: str | None = None
    values: frozenset[Any] = frozenset()  # json_key() of each member; hosts for the domain operators
    types: frozenset[str] = frozenset()  # the JSON types eq, ne, in and not_in compare
    segments: tuple[tuple[str, bool], ...] = field(default=(), compare=False)
    pattern: Regex | None = field(default=None, compare=False)

    def describe(self) -> str:
        if self.op == "present":
            return f"{self.param} is present"
        target = f"list {self.list_name}" if self.list_name else repr(self.value)
        return f"{self.param} {self.op} {target}"

    def holds(self, params: Any) -> bool:
        found = resolve(params, self.segments)
        if self.op == "present":
            return any(v is not MISSING for v in found)
        return any(self._holds_for(v) for v in found)

    def operand(self, v: Any) -> Any:
        """What this operator compares for a reached value, or UNCOMPARABLE.

        This is the one place that decides which JSON types an operator compares: numbers for
        gt/gte/lt/lte; the condition value's type for eq/ne; the types among the listed values for
        in/not_in; strings for matches; strings that name a host (or free text) for the domain
        operators. Everything else, and every missing value, is UNCOMPARABLE, and so holds.
        """
        if v is MISSING or v is THROUGH_NON_OBJECT:
            return UNCOMPARABLE
        op = self.op
        kind = json_type(v)
        if op in NUMERIC_OPERATORS:
            return v if kind == "number" else UNCOMPARABLE
        if op in ("eq", "ne", "in", "not_in"):
            if kind not in self.types:
                return UNCOMPARABLE
            try:
                return json_key(v)
            except RecursionError:  # nested deeper than Python follows: cannot be judged
                return UNCOMPARABLE
        if kind != "string":
            return UNCOMPARABLE
        if op == "matches":
            return v
        if op in DOMAIN_OPERATORS:
            return _hosts_or_uncomparable(v)
        return UNCOMPARABLE  # an operator this engine does not know

    def _holds_for(self, v: Any) -> bool:
        x = self.operand(v)
        if x is UNCOMPARABLE:
            return True
        op = self.op
        if op == "gt":
            return bool(x > self.value)
        if op == "gte":
            return bool(x >= self.value)
        if op == "lt":
            return bool(x < self.value)
        if op == "lte":
            return bool(x <= self.value)
        if op == "eq":
            return x in self.values
        if op == "ne":
            return x not in self.values
        if op == "in":
            return x in self.values
        if op == "not_in":
            return x not in self.values
        if op == "matches":
            found = self.pattern.search(x) if self.pattern is not None else None
            return True if found is None else found  # text that is not valid Unicode cannot be judged
        if op == "domain_in":
            return any(domain_matches(d, self.values) for d in x)
        return any(not domain_matches(d, self.values) for d in x)  # domain_not_in


def _listed(op: str, raw: list[Any]) -> tuple[frozenset[Any], frozenset[str]]:
    """(values, types) of a list operand, refusing members the operator cannot compare."""
    if op in DOMAIN_OPERATORS:
        hosts = set()
        for entry in raw:
            host = domain_name(entry)
            if host is None:
                raise ValueError(f"{entry!r} is not a domain name (write example.com, without scheme or path)")
            hosts.add(host)
        return frozenset(hosts), frozenset()
    keys, types = set(), set()
    for member in raw:
        kind = json_type(member)
        if kind not in ("string", "number", "boolean", "null"):
            raise ValueError(f"list members of {op!r} must be strings, numbers, booleans or null, not {member!r}")
        keys.add(json_key(member))
        types.add(kind)
    return frozenset(keys), frozenset(types)


def compile_condition(spec: dict[str, Any], lists: dict[str, list[Any]]) -> Condition:
    """Build a Condition from its policy form. Raises ValueError with a readable message."""
    if not isinstance(spec, dict):
        raise ValueError("a condition must be a mapping")
    op = spec.get("op")
    if op not in OPERATORS:
        raise ValueError(f"unknown operator {op!r} (use one of {', '.join(OPERATORS)})")
    segments = parse_path(spec.get("param", ""))
    list_name = spec.get("list")
    values: frozenset[Any] = frozenset()
    types: frozenset[str] = frozenset()
    if list_name is not None:
        if op not in LIST_OPERATORS:
            raise ValueError(f"operator {op!r} takes a value, not a list")
        if list_name not in lists:
            raise ValueError(f"unknown list {list_name!r}")
        values, types = _listed(op, list(lists[list_name]))
    elif op in LIST_OPERATORS:
        if not isinstance(spec.get("value"), list):
            raise ValueError(f"operator {op!r} needs 'list' (a named list) or a list 'value'")
        values, types = _listed(op, spec["value"])
    pattern = None
    if op == "matches":
        if not isinstance(spec.get("value"), str):
            raise ValueError("operator 'matches' needs a regular expression as 'value'")
        try:
            pattern = compile_regex(spec["value"])
        except RegexError as exc:
            raise ValueError(str(exc)) from None
    if op in NUMERIC_OPERATORS and json_type(spec.get("value")) != "number":
        raise ValueError(f"operator {op!r} needs a number as 'value' (a finite one)")
    if op in ("eq", "ne"):
        if "value" not in spec:
            raise ValueError(f"operator {op!r} needs a 'value'")
        key = json_key(spec["value"])
        if key is UNCOMPARABLE:
            raise ValueError(f"operator {op!r} needs a JSON value, not {spec['value']!r}")
        values, types = frozenset({key}), frozenset({json_type(spec["value"]) or ""})
    tier = spec.get("tier")
    if not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= 4:
        raise ValueError("a condition's 'tier' must be an integer from 1 to 4")
    return Condition(
        param=spec["param"],
        op=op,
        tier=tier,
        value=spec.get("value"),
        list_name=list_name,
        values=values,
        types=types,
        segments=segments,
        pattern=pattern,
    )


def unreadable_condition(spec: Any, problem: str) -> Condition:
    """A stored condition that no longer compiles (say, a pattern RE2 refuses): it always holds,
    at its own tier if that can be read and at tier 4 otherwise. Fail closed, never open."""
    tier = spec.get("tier") if isinstance(spec, dict) else None
    if not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= 4:
        tier = 4
    param = spec.get("param") if isinstance(spec, dict) else None
    return Condition(param=str(param or "?"), op=f"unreadable ({problem})", tier=tier)
