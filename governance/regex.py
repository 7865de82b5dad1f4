"""The one regular-expression dialect of policies: RE2, for `matches` and for schema `pattern`.

Admins write these expressions and agents write the text they run on, so the engine must be
linear-time (RE2 never backtracks). The dialect is RE2's Perl-like syntax as RE2 reads it:
`\\d`, `\\w`, `\\s` and `\\b` are ASCII; `$` matches only at the very end of the text (never
before a trailing newline) unless `(?m)` is set; `.` does not match a newline unless `(?s)` is
set; lookaround and backreferences do not exist, so a policy that uses them is refused when it
is applied. Text is matched as UTF-8; a string that is not valid Unicode (a lone surrogate)
cannot be read, and the caller decides what that means (a condition holds, a schema refuses).
"""

from __future__ import annotations

import functools

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to the admin, not to the worker's stderr
_OPTIONS.max_mem = 8 << 20  # bounds the DFA per expression; RE2 falls back to a slower linear engine


class RegexError(ValueError):
    """A pattern RE2 does not accept."""


class Regex:
    """A compiled RE2 expression. `search` is unanchored, as in `matches` and JSON Schema."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str):
        if not isinstance(pattern, str):
            raise RegexError("a regular expression must be a string")
        self.pattern = pattern
        try:
            self._compiled = re2.compile(pattern, _OPTIONS)
        except re2.error as exc:
            raise RegexError(_message(exc)) from None
        except UnicodeEncodeError:
            raise RegexError("the expression is not valid Unicode") from None

    def search(self, text: str) -> bool | None:
        """True or False; None when the text cannot be read as UTF-8."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return self._compiled.search(data) is not None

    def findall(self, text: str) -> list[str]:
        """Every non-overlapping match, in order (for binding a scope template to a session's input)."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return []
        return [m.group(0).decode("utf-8", "replace") for m in self._compiled.finditer(data)]

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def _message(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return f"invalid regular expression: {detail} (policies use RE2 syntax: no lookaround, no backreferences)"


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Regex:
    """Compile once per pattern. Raises RegexError with a readable message."""
    return Regex(pattern)


def regex_problem(pattern: object) -> str | None:
    """Why a pattern cannot be used, or None."""
    if not isinstance(pattern, str):
        return "a regular expression must be a string"
    try:
        compile_regex(pattern)
    except RegexError as exc:
        return str(exc)
    return None
