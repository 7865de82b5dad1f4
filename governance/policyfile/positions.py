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
    marks[()] = (root.start_mark.line + 1, root.start_mark.column + 1)
    stack: list[tuple[yaml.Node, Path]] = [(root, ())]
    while stack and len(marks) < MAX_MARKS:
        node, path = stack.pop()
        if len(path) > MAX_DEPTH:
            continue  # a recursive alias (refused by the loader) would go on forever
        children: list[tuple[Any, yaml.Node]] = []
        if isinstance(node, yaml.MappingNode):
            children = [(k.value, v) for k, v in _pairs(node) if isinstance(k, yaml.ScalarNode)]
        elif isinstance(node, yaml.SequenceNode):
            children = list(enumerate(node.value))
        for key, child in children:
            # The value's place (where a wrong value is); a mapping's own keys before merged ones.
            if (*path, key) not in marks:
                marks[(*path, key)] = (child.start_mark.line + 1, child.start_mark.column + 1)
                stack.append((child, (*path, key)))
    return marks


def _pairs(node: yaml.MappingNode, depth: int = 0) -> list[tuple[yaml.Node, yaml.Node]]:
    """The mapping's own pairs, then those a `<<` merge brings that it does not override."""
    # The constructor has already flattened merges into node.value (merged pairs first, the
    # mapping's own after them): the last pair of a key is the one that counts.
    own: list[tuple[yaml.Node, yaml.Node]] = []
    seen: set[str] = set()
    for k, v in reversed(node.value):
        if k.tag != _MERGE_TAG and isinstance(k, yaml.ScalarNode) and k.value not in seen:
            seen.add(k.value)
            own.append((k, v))
    own.reverse()
    if depth > 20:
        return own
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
    out: list[tuple[tuple[int, int], str]] = []
    for error in errors:
        yaml_error = _YAML_WHERE.match(error)
        if yaml_error:
            line, column = int(yaml_error.group(1)), int(yaml_error.group(2))
            out.append(((line, column), f"{filename}:{line}:{column} {yaml_error.group(3)}"))
            continue
        head, sep, _rest = error.partition(": ")
        where = locate(parse_path(head), marks) if sep and not head.startswith("(") else None
        if where is None and sep and head == "(document)":
            where = marks.get(())
        out.append((where or (0, 0), f"{filename}:{where[0]}:{where[1]} {error}" if where else f"{filename}: {error}"))
    return [text for _, text in sorted(out, key=lambda pair: pair[0])]  # in the order of the file
