"""A small reference model of README's policy rules, written from README and not from the code.

It decides a call the way README says a call is decided ("The policy file", "Security model"):
deny by default, then the assigned tier, raised by every condition that holds. It is only as
general as the random policies of test_decide_model.py need: hosts come from a table of the
strings those tests use (each row read by hand with README's rules for hosts and links), and
schemas from a few fixed ones, each with its rule written out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

# -- JSON types (README: "The JSON types are JSON's") ----------------------------------------


def jtype(v: Any) -> str | None:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "number"
    if isinstance(v, float):
        return "number" if math.isfinite(v) else None
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array" if all(jtype(x) is not None for x in v) else None
    if isinstance(v, dict):
        return "object" if all(jtype(x) is not None for x in v.values()) else None
    return None


def jequal(a: Any, b: Any) -> bool:
    ta, tb = jtype(a), jtype(b)
    if ta is None or ta != tb:
        return False
    if ta == "array":
        return len(a) == len(b) and all(jequal(x, y) for x, y in zip(a, b))
    if ta == "object":
        return a.keys() == b.keys() and all(jequal(a[k], b[k]) for k in a)
    return a == b  # same scalar type: 1 == 1.0, and never True == 1


# -- Hosts (README: "Hosts and links"), read by hand ----------------------------------------------

HOSTS: dict[str, list[str] | None] = {
    "x@example.com": ["example.com"],
    "(jürgen@example.com)": ["example.com"],
    "mailto:a@support.example.com#x": ["support.example.com"],
    "Bob <bob@Example.COM>": ["example.com"],
    "https://docs.example.com/x": ["docs.example.com"],
    "https://evil.test\\@example.com/": ["evil.test", "example.com"],
    "https:evil.test": ["evil.test"],
    "http://0x7f.1/": ["127.0.0.1"],
    "https://EXAMPLE.com./": ["example.com"],
    "http://bücher.de/": ["xn--bcher-kva.de"],
    "x@example.com,y@evil.test": ["example.com", "evil.test"],
    "see evil.test/x today": ["evil.test"],
    "mail a@support.example.com, e.g. today": ["support.example.com"],
    "version 3.14 is out": [],
    "plain words": [],
    "nodomain": [],
    "e.g.": None,
}
DOMAINS = {"example.com": "example.com", "support.example.com": "support.example.com", "evil.test": "evil.test"}
DOMAINS.update({"bücher.de": "xn--bcher-kva.de", "127.0.0.1": "127.0.0.1"})


def hosts(s: str) -> list[str] | None:
    if s in HOSTS:
        return HOSTS[s]
    # Any other string the tests make has no '.', ':', '@' or '%', so it names no host: one
    # word without them names nothing, as free text without links does (README, issue 14).
    assert not any(c in s for c in ".:@%\u3002\uff0e\uff61"), s
    return [] if s.strip() else None


def in_domain(host: str, listed: set[str]) -> bool:
    if host.startswith("[") or all(p.isdigit() for p in host.split(".")):
        return host in listed
    return any(host == d or host.endswith("." + d) for d in listed)


# -- Regular expressions (README: RE2, ASCII classes, `$` only at the very end) -------------------


def re2_like(pattern: str, text: str) -> bool | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    # The patterns the tests use only need: ASCII classes, and `$` at the very end of the text.
    translated = pattern.replace("$", r"\Z")
    return re.search(translated, text, re.ASCII) is not None


# -- Paths and conditions ----------------------------------------------------------------------------

ABSENT, THROUGH = "absent", "through"


def reach(value: Any, path: str) -> list[tuple[str, Any]]:
    """('value', v) for every value the path reaches; ('absent',) / ('through',) otherwise."""
    out: list[tuple[str, Any]] = [("value", value)]
    for part in path.split("."):
        star = part.endswith("[*]")
        name = part[:-3] if star else part
        nxt: list[tuple[str, Any]] = []
        for kind, v in out:
            if kind != "value":
                nxt.append((kind, v))
            elif not isinstance(v, dict):
                nxt.append((THROUGH, None))
            elif name not in v:
                nxt.append((ABSENT, None))
            elif not star:
                nxt.append(("value", v[name]))
            elif not isinstance(v[name], list):
                nxt.append((THROUGH, None))
            else:
                nxt.extend(("value", e) for e in v[name])
        out = nxt
    return out


def holds_for(cond: dict[str, Any], v: Any, lists: dict[str, list[Any]]) -> bool:
    op, value = cond["op"], cond.get("value")
    members = lists[cond["list"]] if "list" in cond else value
    t = jtype(v)
    if op in ("gt", "gte", "lt", "lte"):
        if t != "number":
            return True
        return {"gt": v > value, "gte": v >= value, "lt": v < value, "lte": v <= value}[op]
    if op in ("eq", "ne"):
        if t != jtype(value):
            return True
        return jequal(v, value) == (op == "eq")
    if op in ("in", "not_in"):
        if t not in {jtype(m) for m in members}:
            return True
        return any(jequal(v, m) for m in members) == (op == "in")
    if op == "matches":
        if t != "string":
            return True
        found = re2_like(value, v)
        return True if found is None else found
    if op in ("domain_in", "domain_not_in"):
        if t != "string":
            return True
        found = hosts(v)
        if found is None:
            return True
        listed = {DOMAINS[d] for d in members}
        if op == "domain_in":
            return any(in_domain(h, listed) for h in found)
        return any(not in_domain(h, listed) for h in found)
    raise AssertionError(op)


def holds(cond: dict[str, Any], params: dict[str, Any], lists: dict[str, list[Any]]) -> bool:
    """README: a condition that cannot be judged holds, through every block."""
    return truth(cond, params, lists) is not False


def _fold(cond: dict[str, Any], members: list[Any]) -> bool:
    """README: `case: insensitive` folds case; addresses and domains fold by default."""
    if "case" in cond:
        return cond["case"] == "insensitive"
    op = cond["op"]
    return op in ("eq", "ne", "in", "not_in") and any(
        isinstance(m, str) and ("@" in m or m in DOMAINS) for m in members
    )


def _leaf_for(cond: dict[str, Any], v: Any, lists: dict[str, list[Any]]) -> bool | None:
    """True / False, or None when the operator cannot judge the value."""
    op = cond["op"]
    members = lists[cond["list"]] if "list" in cond else cond.get("value")
    if op in ("matches", "not_matches"):
        if jtype(v) != "string":
            return None
        patterns = members if "list" in cond else [members]
        prefix = "(?i)" if cond.get("case") == "insensitive" else ""
        found = [re2_like(prefix + p, v) for p in patterns]
        any_match: bool | None = True if True in found else (None if None in found else False)
        if any_match is None:
            return None
        return any_match if op == "matches" else not any_match
    if op in ("eq", "ne", "in", "not_in"):
        listed = members if (op in ("in", "not_in") or "list" in cond) else [members]
        if jtype(v) not in {jtype(m) for m in listed}:
            return None
        fold = _fold(cond, listed)
        norm = lambda x: x.casefold() if fold and isinstance(x, str) else x  # noqa: E731
        found_in = any(jequal(norm(v), norm(m)) for m in listed)
        return found_in if op in ("eq", "in") else not found_in
    if op in ("domain_in", "domain_not_in") and jtype(v) == "string" and hosts(v) is None:
        return None
    if op in ("gt", "gte", "lt", "lte") and jtype(v) != "number":
        return None
    if op in ("domain_in", "domain_not_in") and jtype(v) != "string":
        return None
    return holds_for(cond, v, lists)


def truth(cond: dict[str, Any], params: dict[str, Any], lists: dict[str, list[Any]]) -> bool | None:
    """Kleene's three values: all is false if a part is, any true if a part is, not swaps."""
    if "not" in cond:
        inner = truth(cond["not"], params, lists)
        return None if inner is None else not inner
    for kind, decisive in (("all", False), ("any", True)):
        if kind in cond:
            parts = [truth(p, params, lists) for p in cond[kind]]
            if decisive in parts:
                return decisive
            return None if None in parts else not decisive
    reached = reach(params, cond["param"])
    if cond["op"] == "present":
        return any(kind != ABSENT for kind, _ in reached)
    result: bool | None = False
    for kind, v in reached:
        if cond.get("if_present") and (kind == ABSENT or (kind == "value" and v is None)):
            continue
        t = None if kind != "value" else _leaf_for(cond, v, lists)
        if t is True:
            return True
        if t is None:
            result = None
    return result


# -- Schemas: the few the tests use, each with its rule -----------------------------------------

SCHEMAS: dict[str, dict[str, Any]] = {
    "any": {"type": "object"},
    "digits": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^\\d+$"}}},
    "digits_ref": {
        "type": "object",
        "properties": {"code": {"$ref": "#/$defs/digits"}},
        "$defs": {"digits": {"type": "string", "pattern": "^\\d+$"}},
    },
    "n_integers": {"type": "object", "patternProperties": {"^n\\d$": {"type": "integer"}}},
}


def _is_integer(v: Any) -> bool:
    return jtype(v) == "number" and float(v).is_integer()


def schema_ok(name: str, params: dict[str, Any]) -> bool:
    if name == "any":
        return True
    if name in ("digits", "digits_ref"):
        if "code" not in params:
            return True
        code = params["code"]
        return isinstance(code, str) and re2_like("^\\d+$", code) is True
    if name == "n_integers":
        for key, v in params.items():
            found = re2_like("^n\\d$", key)
            if found is None or (found and not _is_integer(v)):  # a key that cannot be read is refused
                return False
        return True
    raise AssertionError(name)


# -- The decision ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    tier: int | None


def decide(policy: dict[str, Any], action: str, params: Any) -> Outcome:
    """policy: {actions: {name: {mode, data_objects, schema}}, grants: set, tiers: {name: {tier, conditions}}, lists}"""
    spec, rule = policy["actions"].get(action), policy["tiers"].get(action)
    if spec is None or rule is None or not spec["data_objects"]:
        return Outcome(False, None)
    if any((o, spec["mode"]) not in policy["grants"] for o in spec["data_objects"]):
        return Outcome(False, None)
    if not isinstance(params, dict) or not schema_ok(spec["schema"], params):
        return Outcome(False, None)
    tier = rule["tier"]
    for cond in rule["conditions"]:
        if holds(cond, params, policy["lists"]):
            tier = max(tier, cond["tier"])
    return Outcome(tier < 4, tier)
