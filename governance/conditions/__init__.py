"""Tier conditions: comparisons on a call's parameters or the session's facts, and blocks
(`all`, `any`, `not`) that combine them, each raising a tier when it holds.

The rule that keeps this safe: what cannot be judged (a missing parameter, a value of a type
the operator does not compare, facts that are not known) counts as holding, through every
block. Uncertainty raises the tier; it never lowers it. See leaf.py and blocks.py.
"""

from governance.conditions.blocks import BLOCKS, Block, Node, compile_condition, leaves, unreadable_condition
from governance.conditions.leaf import (
    CASES,
    DOMAIN_OPERATORS,
    FACTS,
    LIST_OPERATORS,
    NAMED_LIST_OPERATORS,
    NUMERIC_OPERATORS,
    OPERATORS,
    Condition,
    compile_leaf,
    domains_in,
)
from governance.conditions.values import (
    MISSING,
    THROUGH_NON_OBJECT,
    UNCOMPARABLE,
    json_key,
    json_type,
    parse_path,
    resolve,
)

__all__ = [
    "BLOCKS",
    "CASES",
    "DOMAIN_OPERATORS",
    "FACTS",
    "LIST_OPERATORS",
    "MISSING",
    "NAMED_LIST_OPERATORS",
    "NUMERIC_OPERATORS",
    "OPERATORS",
    "THROUGH_NON_OBJECT",
    "UNCOMPARABLE",
    "Block",
    "Condition",
    "Node",
    "compile_condition",
    "compile_leaf",
    "domains_in",
    "json_key",
    "json_type",
    "leaves",
    "parse_path",
    "resolve",
    "unreadable_condition",
]
