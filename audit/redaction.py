"""Never-persist values are replaced by fingerprints before an event is written.

The audit app sits below governance, so it cannot read ContextRules itself. Governance
registers a provider at start-up that names the detail keys whose values must never be
stored (the never-persist data types and the fields mapped to them).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from audit.canonical import fingerprint

_providers: list[Callable[[], Iterable[str]]] = []


def register_never_persist_provider(provider: Callable[[], Iterable[str]]) -> None:
    if provider not in _providers:
        _providers.append(provider)


def never_persist_keys() -> frozenset[str]:
    keys: set[str] = set()
    for provider in _providers:
        keys.update(key.lower() for key in provider())
    return frozenset(keys)


def scrub(value: Any, keys: frozenset[str]) -> Any:
    """A copy of value in which every entry under a never-persist key is fingerprinted."""
    if isinstance(value, dict):
        return {
            k: (fingerprint(v) if str(k).lower() in keys else scrub(v, keys))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub(v, keys) for v in value]
    return value
