"""Never-persist values are replaced by fingerprints before an event is written.

The audit app sits below governance, so it cannot read ContextRules itself. Governance
registers a provider at start-up that names the detail keys whose values must never be
stored (the never-persist data types and the fields mapped to them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from audit.canonical import fingerprint

_providers: list[Callable[[], Iterable[str]]] = []


def register_never_persist_provider(provider: Callable[[], Iterable[str]]) -> None:
    if provider not in _providers:
        _providers.append(provider)
    forget_never_persist_keys()


_CACHE_SECONDS = 2.0
_cache: tuple[float, frozenset[str]] | None = None


def never_persist_keys() -> frozenset[str]:
    """The keys to fingerprint, re-read at most every two seconds.

    Every append asks, so the answer is cached briefly; `forget_never_persist_keys()` drops
    the cache at once in the process that changed the rules (see governance.apps).
    """
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < _CACHE_SECONDS:
        return _cache[1]
    keys: set[str] = set()
    for provider in _providers:
        keys.update(key.lower() for key in provider())
    _cache = (now, frozenset(keys))
    return _cache[1]


def forget_never_persist_keys(*args: object, **kwargs: object) -> None:
    global _cache
    _cache = None


def scrub(value: Any, keys: frozenset[str]) -> Any:
    """A copy of value in which every entry under a never-persist key is fingerprinted."""
    if isinstance(value, dict):
        return {k: (fingerprint(v) if str(k).lower() in keys else scrub(v, keys)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, keys) for v in value]
    return value
