"""Where each value of a policy file is: line and column from the YAML parser's nodes, so that
every error reads `payments.yaml:42:7 workflows[1].tiers[0].conditions[2]: ...`."""

from __future__ import annotations

import re
from typing import Any

import yaml

Path = tuple[Any, ...]
Marks = dict[Path, tuple[int, int]]  # path -> (line, column), both from 1

_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_MARKS = 100_000  # the same bound as the values of a document (load.MAX_VALUES)
MAX_DEPTH = 64  # a policy file is a few levels deep; conditions that nest add a few more


def node_marks(root: yaml.Node | None) -> Marks:
    """The position of every value, by its path in the document. Anchors and merge keys are
    followed (a merged key is where it was written); a recursive alias is not entered twice."""
    marks: Marks = {}
    if root is None:
        return marks
    stack: list[tuple[yaml.Node, Path]] = [(root, ())]
    while stack and len(marks) < MAX_MARKS:
        node, path = stack.pop()
        marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if len(path) > MAX_DEPTH:
            continue  # a recursive alias (refused by the loader) would go on forever
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in _pairs(node):
                if isinstance(key_node, yaml.ScalarNode):
                    key = key_node.value
                    marks.setdefault((*path, key), (key_node.start_mark.line + 1, key_node.start_mark.column + 1))
                    stack.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                stack.append((child, (*path, i)))
    return marks


def _pairs(node: yaml.MappingNode, depth: int = 0) -> list[tuple[yaml.Node, yaml.Node]]:
    """The mapping's own pairs, then those a `<<` merge brings that it does not override."""
    own = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
    if depth > 20:
        return own
    seen = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE_TAG:
            continue
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if isinstance(source, yaml.MappingNode):
                for k, v in _pairs(source, depth + 1):
                    if isinstance(k, yaml.ScalarNode) and k.value not in seen:
                        seen.add(k.value)
                        own.append((k, v))
    return own


_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def parse_path(text: str) -> Path:
    """`workflows[1].tiers[0].action` -> ('workflows', 1, 'tiers', 0, 'action')."""
    parts: list[Any] = []
    for match in _PART.finditer(text):
        parts.append(int(match.group(1)) if match.group(1) is not None else match.group(2))
    return tuple(parts)


def locate(path: Path, marks: Marks) -> tuple[int, int] | None:
    """The position of the longest prefix of `path` the file has. A name with dots (a list
    `crm.payees`) is tried whole too."""
    best = marks.get(())
    current: Path = ()
    i = 0
    while i < len(path):
        found = False
        for j in range(len(path), i, -1):  # the longest run of parts that is one key
            parts = path[i:j]
            key: Any = parts[0] if len(parts) == 1 else ".".join(str(p) for p in parts)
            if (*current, key) in marks:
                current = (*current, key)
                best = marks[current]
                i = j
                found = True
                break
        if not found:
            break
    return best


_YAML_WHERE = re.compile(r"^line (\d+), column (\d+): (.*)$", re.S)


def with_positions(errors: list[str], marks: Marks, filename: str) -> list[str]:
    """`path: message` -> `file:line:column path: message` (the path kept, for people and tools)."""
    out = []
    for error in errors:
        yaml_error = _YAML_WHERE.match(error)
        if yaml_error:
            out.append(f"{filename}:{yaml_error.group(1)}:{yaml_error.group(2)} {yaml_error.group(3)}")
            continue
        head, sep, _rest = error.partition(": ")
        where = locate(parse_path(head), marks) if sep and not head.startswith("(") else None
        if where is None and sep and head == "(document)":
            where = marks.get(())
        out.append(f"{filename}:{where[0]}:{where[1]} {error}" if where else f"{filename}: {error}")
    return out
