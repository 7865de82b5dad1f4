"""A form submitted without a recent MFA sign-in is kept, and sent again after the step-up.

The POST is stashed in the signed-in user's own session under a random one-time id, for ten
minutes at most. After the fresh sign-in the browser comes back to the replay page, which takes
the stash out of the session (so it is used once) and posts the same fields again with a fresh
CSRF token; the view then runs its checks as for any POST. A stash is never used across users:
it records the user, and Django empties the session when someone else signs in on it. Fields
that hold a secret are never stashed (the session store is no place for them): those forms are
simply filled in again.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from django.http import HttpRequest

SESSION_KEY = "warden_replay"
MAX_AGE_SECONDS = 600
MAX_CHARS = 200_000  # a pasted policy file fits; a session row is not a file store
MAX_STASHES = 5
SECRET_FIELDS = frozenset({"secret", "password"})
_NOT_KEPT = frozenset({"csrfmiddlewaretoken"})


def _fresh(stashes: Any, now: float) -> dict[str, Any]:
    if not isinstance(stashes, dict):
        return {}
    return {k: v for k, v in stashes.items() if isinstance(v, dict) and now - float(v.get("at", 0)) <= MAX_AGE_SECONDS}


def stash(request: HttpRequest) -> str | None:
    """Keep this POST for after the step-up; its one-time id, or None when it cannot be kept."""
    if request.method != "POST" or not request.user.is_authenticated:
        return None
    if any(name in SECRET_FIELDS for name in request.POST):
        return None
    items = [[name, value] for name in request.POST if name not in _NOT_KEPT for value in request.POST.getlist(name)]
    if sum(len(name) + len(value) for name, value in items) > MAX_CHARS:
        return None
    now = time.time()
    stashes = _fresh(request.session.get(SESSION_KEY), now)
    for old in sorted(stashes, key=lambda k: stashes[k]["at"])[: max(0, len(stashes) - MAX_STASHES + 1)]:
        del stashes[old]
    replay_id = secrets.token_urlsafe(16)
    stashes[replay_id] = {"user": request.user.pk, "path": request.path, "items": items, "at": now}
    request.session[SESSION_KEY] = stashes
    return replay_id


def take(request: HttpRequest, replay_id: str) -> dict[str, Any] | None:
    """The stashed form, removed from the session: None if unknown, expired or someone else's."""
    stashes = _fresh(request.session.get(SESSION_KEY), time.time())
    saved = stashes.pop(replay_id, None)
    request.session[SESSION_KEY] = stashes
    if saved is None or saved.get("user") != request.user.pk:
        return None
    path = str(saved.get("path") or "")
    if not path.startswith("/") or path.startswith("//"):
        return None
    return saved
