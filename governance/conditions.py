"""Tier conditions: a parameter path, an operator and a value that together may raise a tier.

The rule that keeps this safe: a condition whose parameter is missing, or of a type the
operator cannot judge, counts as holding. Uncertainty raises the tier; it never lowers it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

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

_SEGMENT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-]*)(\[\*\])?$")
_URL_RE = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.\-]*://|www\.)[^\s<>\"'()\[\]]+")
_EMAIL_RE = re.compile(r"[^\s<>\"'(),;:@]+@([^\s<>\"'(),;:@/]+)")
_HOST_RE = re.compile(r"^[^\s/@:]+\.[^\s/@:]+$")


class _Missing:
    __slots__ = ()


MISSING = _Missing()


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
    """Every value the path reaches; MISSING where it reaches nothing or a wrong type."""
    if not segments:
        yield value
        return
    (name, star), rest = segments[0], segments[1:]
    if not isinstance(value, dict) or name not in value:
        yield MISSING
        return
    child = value[name]
    if not star:
        yield from resolve(child, rest)
        return
    if not isinstance(child, list):
        yield MISSING
        return
    for element in child:
        yield from resolve(element, rest)


def _normalize_domain(host: str) -> str | None:
    host = host.strip().strip(".").lower()
    if not host:
        return None
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host  # cannot be normalised, so it will not match any listed domain


def domains_in(value: str) -> list[str] | None:
    """The domains an email address, URL, host name or free text refers to.

    A single token that names no domain gives None (a wrong type); free text without
    links gives an empty list.
    """
    text = value.strip()
    if not text:
        return None
    if not any(ch.isspace() for ch in text):
        token = text.strip("<>,;")
        host: str | None
        if "://" in token:
            try:
                host = urlsplit(token).hostname
            except ValueError:
                host = None
        elif "@" in token:
            host = token.rsplit("@", 1)[1]
        elif token.lower().startswith("www.") or _HOST_RE.match(token):
            host = token.split("/", 1)[0]
        else:
            host = None
        domain = _normalize_domain(host) if host else None
        return [domain] if domain else None
    found: list[str] = []
    for match in _URL_RE.finditer(text):
        url = match.group(0)
        host = urlsplit(url if "://" in url else "http://" + url).hostname if url else None
        if host and (domain := _normalize_domain(host)):
            found.append(domain)
    for match in _EMAIL_RE.finditer(text):
        if domain := _normalize_domain(match.group(1)):
            found.append(domain)
    return found


def domain_matches(domain: str, listed: frozenset[str]) -> bool:
    """True when domain is a listed domain or a subdomain of one."""
    if domain in listed:
        return True
    parts = domain.split(".")
    return any(".".join(parts[i:]) in listed for i in range(1, len(parts)))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Condition:
    param: str
    op: str
    tier: int
    value: Any = None
    list_name: str | None = None
    values: frozenset[Any] = frozenset()
    segments: tuple[tuple[str, bool], ...] = field(default=(), compare=False)
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def describe(self) -> str:
        if self.op == "present":
            return f"{self.param} is present"
        target = f"list {self.list_name}" if self.list_name else repr(self.value)
        return f"{self.param} {self.op} {target}"

    def holds(self, params: Any) -> bool:
        found = list(resolve(params, self.segments))
        if self.op == "present":
            return any(v is not MISSING for v in found)
        return any(self._holds_for(v) for v in found)

    def _holds_for(self, v: Any) -> bool:
        if v is MISSING:
            return True
        op = self.op
        if op in NUMERIC_OPERATORS:
            if not (_is_number(v) and _is_number(self.value)):
                return True
            return {"gt": v > self.value, "gte": v >= self.value, "lt": v < self.value, "lte": v <= self.value}[op]
        if op == "eq":
            return bool(v == self.value)
        if op == "ne":
            return bool(v != self.value)
        if op in ("in", "not_in"):
            if isinstance(v, (dict, list)):
                return True
            member = v in self.values
            return member if op == "in" else not member
        if op == "matches":
            if not isinstance(v, str) or self.pattern is None:
                return True
            return self.pattern.search(v) is not None
        if op in ("domain_in", "domain_not_in"):
            if not isinstance(v, str):
                return True
            domains = domains_in(v)
            if domains is None:
                return True
            listed = self.values
            if op == "domain_in":
                return any(domain_matches(d, listed) for d in domains)
            return any(not domain_matches(d, listed) for d in domains)
        return True  # an operator this engine does not know: fail closed


def compile_condition(spec: dict[str, Any], lists: dict[str, list[Any]]) -> Condition:
    """Build a Condition from its policy form. Raises ValueError with a readable message."""
    op = spec.get("op")
    if op not in OPERATORS:
        raise ValueError(f"unknown operator {op!r} (use one of {', '.join(OPERATORS)})")
    segments = parse_path(spec.get("param", ""))
    list_name = spec.get("list")
    values: frozenset[Any] = frozenset()
    if list_name is not None:
        if op not in LIST_OPERATORS:
            raise ValueError(f"operator {op!r} takes a value, not a list")
        if list_name not in lists:
            raise ValueError(f"unknown list {list_name!r}")
        raw = lists[list_name]
    elif op in LIST_OPERATORS:
        raw = spec.get("value")
        if not isinstance(raw, list):
            raise ValueError(f"operator {op!r} needs 'list' (a named list) or a list 'value'")
    else:
        raw = None
    if raw is not None:
        if op in ("domain_in", "domain_not_in"):
            values = frozenset(filter(None, (_normalize_domain(str(d)) for d in raw)))
        else:
            values = frozenset(x for x in raw if not isinstance(x, (dict, list)))
    pattern = None
    if op == "matches":
        if not isinstance(spec.get("value"), str):
            raise ValueError("operator 'matches' needs a regular expression as 'value'")
        try:
            pattern = re.compile(spec["value"])
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
    if op in NUMERIC_OPERATORS and not _is_number(spec.get("value")):
        raise ValueError(f"operator {op!r} needs a number as 'value'")
    if op in ("eq", "ne") and "value" not in spec:
        raise ValueError(f"operator {op!r} needs a 'value'")
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
        segments=segments,
        pattern=pattern,
    )
