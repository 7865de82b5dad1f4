"""What a condition reads: parameter paths, and values as JSON types."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

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


def json_key(value: Any, fold: bool = False) -> Any:
    """A hashable form in which two values are equal exactly when they are equal JSON values
    (1 and 1.0 are; true and 1 are not). UNCOMPARABLE when the value is not JSON. With fold,
    strings compare without case (Unicode case folding)."""
    kind = json_type(value)
    if kind is None:
        return UNCOMPARABLE
    if kind == "array":
        items = tuple(json_key(v, fold) for v in value)
        return UNCOMPARABLE if any(i is UNCOMPARABLE for i in items) else (kind, items)
    if kind == "object":
        members = frozenset((k, json_key(v, fold)) for k, v in value.items())
        return UNCOMPARABLE if any(m[1] is UNCOMPARABLE for m in members) else (kind, members)
    if fold and kind == "string":
        return (kind, value.casefold())
    return (kind, value)
