"""The long-poll of `GET /api/v1/actions/{id}?wait=N`, shared by its two waits.

Under WSGI (a sync worker, the test client) the view waits in its own thread. Under ASGI
(config/asgi.py, the Procfile's web process) the view answers at once with HEADER, and the
event loop waits instead, so that a waiting runtime holds no worker. Both waits end on the
same condition: `awaits_reviewer`.
"""

from __future__ import annotations

from typing import Any

from django.urls import Resolver404, resolve

from agents.models import ActionRequest

# Environ key set only by config/asgi.py: a client cannot send it (its headers arrive as HTTP_*).
ON_LOOP = "warden.long_poll_on_loop"
# The response header by which the view asks config/asgi.py to wait ("<action id>;<seconds>");
# config/asgi.py removes it before the answer leaves.
HEADER = "Warden-Long-Poll"
HEADER_BYTES = HEADER.lower().encode()


def awaits_reviewer(action_request_id: Any) -> bool:
    """Whether a long-poll on this action should go on waiting: `approved` is already an answer."""
    return ActionRequest.objects.filter(pk=action_request_id, status=ActionRequest.Status.AWAITING_APPROVAL).exists()


def may_wait(method: str, path: str) -> bool:
    """Whether a request is an action status read, the one view that can ask for a wait.
    HEAD too: Django serves it with the view's get, which would otherwise wait in the thread."""
    if method not in ("GET", "HEAD"):
        return False
    from agents.api.views import ActionView

    try:
        match = resolve(path)
    except Resolver404:
        return False
    return getattr(match.func, "view_class", None) is ActionView
