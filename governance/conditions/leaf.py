"""One comparison: a parameter path (or a session fact), an operator and a value.

The rule that keeps this safe, enforced in one place (`Condition.operand`): a comparison whose
parameter is missing, reached through something that is not an object or list, or of a JSON
type the operator does not compare with the condition's value, is *unknown*, and an unknown
condition holds. Uncertainty raises the tier; it never lowers it. JSON types are JSON's:
booleans are never numbers (Python's `True == 1` is never used), and a number that is not
finite is of no type.

Truth has three values here (True, False, None for unknown) so that `not` and `all` blocks
(governance.conditions.blocks) keep that rule: `not unknown` is still unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from governance.conditions.values import (
    MISSING,
    THROUGH_NON_OBJECT,
    UNCOMPARABLE,
    json_key,
    json_type,
    parse_path,
    resolve,
)
from governance.facts import SENSITIVITIES, SessionFacts, sensitivity_rank
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
    "not_matches",
    "domain_in",
    "domain_not_in",
    "present",
)
LIST_OPERATORS = {"in", "not_in", "domain_in", "domain_not_in"}
# Operators that may take a named list instead of their value (eq/ne with a list mean in/not_in).
NAMED_LIST_OPERATORS = LIST_OPERATORS | {"eq", "ne", "matches", "not_matches"}
NUMERIC_OPERATORS = {"gt", "gte", "lt", "lte"}
DOMAIN_OPERATORS = {"domain_in", "domain_not_in"}
PATTERN_OPERATORS = {"matches", "not_matches"}
EQUALITY_OPERATORS = {"eq", "ne", "in", "not_in"}
FACTS = ("sensitivity", "data_objects", "count", "total")
CASES = ("sensitive", "insensitive")
_HOST_HINTS = (".", ":", "@", "%", "\u3002", "\uff0e", "\uff61")

domains_in = hosts_in  # the name callers knew before host reading moved to governance.hosts

Truth = bool | None  # None: cannot be judged, which counts as holding


def _hosts_or_uncomparable(value: str) -> Any:
    hosts = hosts_in(value)
    if hosts is not None:
        return hosts
    # One word with nothing a host is written with ("Thanks!") names no host, as free text
    # without links does; empty text, and a word that looks like a host but cannot be read as
    # one, stay unknown.
    if not value.strip() or any(hint in value for hint in _HOST_HINTS):
        return UNCOMPARABLE
    return []


def _looks_like_address(member: Any) -> bool:
    """Addresses and domains compare without case unless the condition says otherwise."""
    if not isinstance(member, str):
        return False
    return "@" in member or ("." in member and domain_name(member) is not None)


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
    patterns: tuple[Regex, ...] = field(default=(), compare=False)  # matches/not_matches with a list
    if_present: bool = False
    fold: bool = False  # compare strings without case
    fact: str | None = None
    fact_action: str = ""
    own_action: str = ""  # the action whose tier this condition raises: its call counts in totals

    def describe(self) -> str:
        subject = self._subject()
        if self.op == "present":
            return f"{subject} is present"
        target = f"list {self.list_name}" if self.list_name else repr(self.value)
        extra = " (if present)" if self.if_present else ""
        return f"{subject} {self.op} {target}{extra}"

    def _subject(self) -> str:
        if self.fact is None:
            return self.param
        if self.fact in ("count", "total"):
            of = f" of {self.param}" if self.fact == "total" else ""
            return f"session {self.fact}{of} for {self.fact_action}"
        return f"session {self.fact}"

    def holds(self, params: Any, facts: SessionFacts | None = None) -> bool:
        return self.truth(params, facts) is not False

    def truth(self, params: Any, facts: SessionFacts | None = None) -> Truth:
        if self.fact is not None:
            found = self._fact_values(params, facts)
            if found is None:
                return None
        else:
            found = list(resolve(params, self.segments))
        if self.op == "present":
            return any(v is not MISSING for v in found)
        result: Truth = False
        for v in found:
            if self.if_present and (v is MISSING or v is None):
                continue  # the condition applies only where the parameter is there
            t = self._truth_for(v)
            if t is True:
                return True
            if t is None:
                result = None
        return result

    def _fact_values(self, params: Any, facts: SessionFacts | None) -> list[Any] | None:
        if facts is None:
            return None
        own = self.fact_action == self.own_action
        if self.fact == "sensitivity":
            return [facts.sensitivity]
        if self.fact == "data_objects":
            return sorted(facts.data_objects)
        if self.fact == "count":
            return [facts.counts.get(self.fact_action, 0) + (1 if own else 0)]
        # total: what earlier calls summed, and this call's own value if it is one of them
        total = facts.sums.get(self.fact_action, {}).get(self.param, 0)
        if own:
            mine = params.get(self.param, MISSING) if isinstance(params, dict) else THROUGH_NON_OBJECT
            if json_type(mine) != "number":
                return [UNCOMPARABLE]
            total += cast(float, mine)  # a JSON number, checked just above
        return [total]

    def operand(self, v: Any) -> Any:
        """What this operator compares for a reached value, or UNCOMPARABLE.

        This is the one place that decides which JSON types an operator compares: numbers for
        gt/gte/lt/lte; the condition value's type for eq/ne; the types among the listed values for
        in/not_in; strings for matches; strings that name a host (or free text) for the domain
        operators. Everything else, and every missing value, is UNCOMPARABLE, and so holds.
        """
        if v is MISSING or v is THROUGH_NON_OBJECT or v is UNCOMPARABLE:
            return UNCOMPARABLE
        op = self.op
        kind = json_type(v)
        if self.fact == "sensitivity" and op in NUMERIC_OPERATORS:
            return sensitivity_rank(v)
        if op in NUMERIC_OPERATORS:
            return v if kind == "number" else UNCOMPARABLE
        if op in EQUALITY_OPERATORS:
            if kind not in self.types:
                return UNCOMPARABLE
            try:
                return json_key(v, self.fold)
            except RecursionError:  # nested deeper than Python follows: cannot be judged
                return UNCOMPARABLE
        if kind != "string":
            return UNCOMPARABLE
        if op in PATTERN_OPERATORS:
            return v
        if op in DOMAIN_OPERATORS:
            return _hosts_or_uncomparable(v)
        return UNCOMPARABLE  # an operator this engine does not know

    def _truth_for(self, v: Any) -> Truth:
        x = self.operand(v)
        if x is UNCOMPARABLE:
            return None
        op = self.op
        if op == "gt":
            return bool(x > self.value)
        if op == "gte":
            return bool(x >= self.value)
        if op == "lt":
            return bool(x < self.value)
        if op == "lte":
            return bool(x <= self.value)
        if op in ("eq", "in"):
            return x in self.values
        if op in ("ne", "not_in"):
            return x not in self.values
        if op in PATTERN_OPERATORS:
            found = self._search(x)
            if found is None:
                return None  # text that is not valid Unicode cannot be judged
            return found if op == "matches" else not found
        if op == "domain_in":
            return any(domain_matches(d, self.values) for d in x)
        return any(not domain_matches(d, self.values) for d in x)  # domain_not_in

    def _search(self, text: str) -> bool | None:
        patterns = self.patterns or ((self.pattern,) if self.pattern is not None else ())
        result: bool | None = False
        for pattern in patterns:
            found = pattern.search(text)
            if found:
                return True
            if found is None:
                result = None
        return result


def _listed(op: str, raw: list[Any], fold: bool) -> tuple[frozenset[Any], frozenset[str]]:
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
        keys.add(json_key(member, fold))
        types.add(kind)
    return frozenset(keys), frozenset(types)


def _compile_pattern(pattern: Any, fold: bool) -> Regex:
    if not isinstance(pattern, str):
        raise ValueError(f"a regular expression must be a string, not {pattern!r}")
    try:
        return compile_regex(f"(?i){pattern}" if fold else pattern)
    except RegexError as exc:
        raise ValueError(str(exc)) from None


def _fold(spec: dict[str, Any], members: list[Any]) -> bool:
    case = spec.get("case")
    if case is not None and case not in CASES:
        raise ValueError(f"'case' is {' or '.join(CASES)}, not {case!r}")
    if case is not None:
        return case == "insensitive"
    return spec.get("op") in EQUALITY_OPERATORS and any(_looks_like_address(m) for m in members)


LEAF_KEYS = frozenset({"param", "op", "value", "list", "tier", "if_present", "case", "fact", "action"})


def compile_leaf(spec: dict[str, Any], lists: dict[str, list[Any]], *, tier: int, action: str = "") -> Condition:
    """Build one comparison from its policy form. Raises ValueError with a readable message."""
    unknown = set(spec) - LEAF_KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} in a condition")
    op = spec.get("op")
    if op not in OPERATORS:
        raise ValueError(f"unknown operator {op!r} (use one of {', '.join(OPERATORS)})")
    fact = spec.get("fact")
    segments: tuple[tuple[str, bool], ...] = ()
    if fact is None:
        if "action" in spec:
            raise ValueError("'action' names whose totals a 'fact' reads; a parameter condition has none")
        segments = parse_path(spec.get("param", ""))
    else:
        _check_fact(spec, op)
    list_name = spec.get("list")
    if list_name is not None:
        if op not in NAMED_LIST_OPERATORS:
            raise ValueError(f"operator {op!r} takes a value, not a list")
        if not isinstance(list_name, str) or list_name not in lists:
            raise ValueError(f"unknown list {list_name!r}")
        if "value" in spec:
            raise ValueError("give either 'list' or 'value', not both")
        members = list(lists[list_name])
    elif op in LIST_OPERATORS:
        if not isinstance(spec.get("value"), list):
            raise ValueError(f"operator {op!r} needs 'list' (a named list) or a list 'value'")
        members = spec["value"]
    else:
        members = [spec.get("value")]
    if "if_present" in spec and not isinstance(spec["if_present"], bool):
        raise ValueError("'if_present' is true or false")
    if spec.get("if_present") and (fact is not None or op == "present"):
        raise ValueError("'if_present' applies to parameter conditions other than 'present'")
    fold = _fold(spec, members)
    values: frozenset[Any] = frozenset()
    types: frozenset[str] = frozenset()
    value = spec.get("value")
    pattern: Regex | None = None
    patterns: tuple[Regex, ...] = ()
    if op in PATTERN_OPERATORS:
        if list_name is None and not isinstance(value, str):
            raise ValueError(f"operator {op!r} needs a regular expression as 'value' (or 'list' of them)")
        compiled = tuple(_compile_pattern(p, fold) for p in members)
        if list_name is None:
            pattern = compiled[0]
        else:
            patterns = compiled
    elif op in LIST_OPERATORS or (list_name is not None and op in ("eq", "ne")):
        values, types = _listed(op, members, fold)
    elif op in ("eq", "ne"):
        if "value" not in spec:
            raise ValueError(f"operator {op!r} needs a 'value'")
        key = json_key(value, fold)
        if key is UNCOMPARABLE:
            raise ValueError(f"operator {op!r} needs a JSON value, not {value!r}")
        values, types = frozenset({key}), frozenset({json_type(value) or ""})
    elif op in NUMERIC_OPERATORS:
        if fact == "sensitivity":
            if value not in SENSITIVITIES:
                raise ValueError(f"compare the session's sensitivity with one of {', '.join(SENSITIVITIES)}")
            value = sensitivity_rank(value)
        elif json_type(value) != "number":
            raise ValueError(f"operator {op!r} needs a number as 'value' (a finite one)")
    fact_action = str(spec.get("action") or action)
    return Condition(
        param=str(spec.get("param", "")),
        op=op,
        tier=tier,
        value=value,
        list_name=list_name,
        values=values,
        types=types,
        segments=segments,
        pattern=pattern,
        patterns=patterns,
        if_present=bool(spec.get("if_present", False)),
        fold=fold,
        fact=fact,
        fact_action=fact_action if fact in ("count", "total") else "",
        own_action=action if fact in ("count", "total") else "",
    )


def _check_fact(spec: dict[str, Any], op: str) -> None:
    fact = spec["fact"]
    if fact not in FACTS:
        raise ValueError(f"unknown fact {fact!r} (use one of {', '.join(FACTS)})")
    if op == "present":
        raise ValueError("a fact is always there: 'present' does not apply")
    if fact == "total":
        if not isinstance(spec.get("param"), str) or not spec["param"].isidentifier():
            raise ValueError("fact 'total' needs 'param', the top-level numeric parameter it sums")
    elif "param" in spec:
        raise ValueError(f"fact {fact!r} takes no 'param'")
    if fact in ("count", "total"):
        if op not in NUMERIC_OPERATORS | {"eq", "ne"}:
            raise ValueError(f"fact {fact!r} is a number: compare it with gt, gte, lt, lte, eq or ne")
        if "action" in spec and (not isinstance(spec["action"], str) or not spec["action"]):
            raise ValueError("'action' names an action type")
    elif "action" in spec:
        raise ValueError(f"fact {fact!r} takes no 'action'")
    if fact == "data_objects" and op in NUMERIC_OPERATORS | DOMAIN_OPERATORS:
        raise ValueError("fact 'data_objects' holds names: use eq, ne, in, not_in, matches or not_matches")
