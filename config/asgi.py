"""The ASGI entry point, which the Procfile serves (gunicorn with uvicorn workers).

Every request runs the WSGI application (config.wsgi: the same middleware, views and
settings) in one thread per process, one request at a time, as a sync worker would; the
process keeps its persistent database connection. What ASGI adds is the wait of a long-poll
(`GET /api/v1/actions/{id}?wait=N`): the view answers at once and says "wait for this action",
and the wait happens here, on the event loop, so that a waiting runtime holds no worker.
When the action leaves `awaiting_approval` (or the wait ends) the request runs through the
view once more, with its authentication, and that answer is sent. Decision 0020 says why
not Django's own ASGI handler (it was measured slower, and kept a connection per request).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from collections.abc import Callable
from tempfile import SpooledTemporaryFile
from typing import Any

from asgiref.sync import sync_to_async
from asgiref.wsgi import WsgiToAsgiInstance

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import DatabaseError
from django.http import HttpResponse

wsgi_application = get_wsgi_application()  # sets Django up: the import below needs its apps

from agents.api import long_poll  # noqa: E402

POLL_SECONDS = 0.25
logger = logging.getLogger("warden.asgi")


class _Response:
    """A WSGI response, taken in the sync thread: status, headers and, unless Django streams
    it, the whole body, so that a plain response costs one hop between the threads."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.status_code = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.iterable = wsgi_application(environ, self.start_response)
        self.chunks: list[bytes] = []
        self.streaming = not isinstance(self.iterable, HttpResponse) or self.iterable.streaming
        if not self.streaming:
            self.chunks = list(self.iterable)
            self.close()

        self.pieces = iter(self.iterable) if self.streaming else iter(())

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
    ) -> Callable[[bytes], object]:
        self.status_code = int(status.split(" ", 1)[0])
        self.headers = [(name.lower().encode("latin1"), value.encode("latin1")) for name, value in headers]
        return self.write

    def write(self, data: bytes) -> object:
        raise RuntimeError("WSGI's write() is not served: Django returns its bodies")

    def next_chunks(self) -> list[bytes]:
        """The next piece of a streamed body ([] at its end)."""
        return list(itertools.islice(self.pieces, 1))

    def close(self) -> None:
        """Sends Django's request_finished, which closes a broken or expired connection."""
        if hasattr(self.iterable, "close"):
            self.iterable.close()


def _environ(scope: Any, body: Any, extra_environ: dict[str, Any]) -> dict[str, Any]:
    adapter = WsgiToAsgiInstance(None)  # asgiref's translation of a scope into an environ
    adapter.scope = scope
    return {**adapter.build_environ(scope, body), "wsgi.multithread": False, **extra_environ}


async def _capped_receive(scope: Any, receive: Any, send: Any) -> Any:
    """The adapter buffers a body whole before the view runs (a sync worker streams it to
    Django, which answers 413 over WARDEN_MAX_BODY_BYTES): a body beyond four times that
    (room for a multipart policy file) is refused here, before it fills a disk. Returns
    the receive to hand on, or None when the refusal has been sent."""
    limit = 4 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    for name, value in scope.get("headers", []):
        if name == b"content-length" and (not value.isdigit() or int(value) > limit):
            await _send_too_large(send)
            return None
    received = 0

    async def counted() -> Any:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _TooLarge
        return message

    return counted


class _TooLarge(Exception):
    pass


# The shape of agents.api.problems' 413, which Django's path answers below the cap.
TOO_LARGE = json.dumps(
    {
        "type": "urn:warden:problem:too-large",
        "title": "Request too large",
        "status": 413,
        "detail": "the request body is larger than the API accepts",
    }
).encode()


async def _send_too_large(send: Any) -> None:
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(TOO_LARGE)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": TOO_LARGE})


async def _run(scope: Any, receive: Any, send: Any, extra_environ: dict[str, Any]) -> None:
    """Runs one request through the WSGI application, in asgiref's one sync thread (the one
    that holds this process's database connection)."""
    capped = await _capped_receive(scope, receive, send)
    if capped is None:
        return
    with SpooledTemporaryFile(max_size=65536) as body:
        try:
            while True:
                message = await capped()
                if message["type"] != "http.request":
                    return  # the client went away before its request was whole
                body.write(message.get("body", b""))
                if not message.get("more_body"):
                    break
        except _TooLarge:
            await _send_too_large(send)
            return
        body.seek(0)
        response = await sync_to_async(_Response)(_environ(scope, body, extra_environ))
    try:
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.headers})
        chunks = await sync_to_async(response.next_chunks)() if response.streaming else response.chunks
        while chunks:
            for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            chunks = await sync_to_async(response.next_chunks)() if response.streaming else []
        await send({"type": "http.response.body", "body": b""})
    finally:
        if response.streaming:
            await sync_to_async(response.close)()


class _Held:
    """One pass of a status read through the view, its answer kept: the messages to send,
    and the wait the view asked for (action id, seconds) or None."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.wait: tuple[str, float] | None = None

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            for name, value in message["headers"]:
                if name == long_poll.HEADER_BYTES:
                    pk, seconds = value.decode().split(";")
                    self.wait = (pk, float(seconds))
            headers = [(name, value) for name, value in message["headers"] if name != long_poll.HEADER_BYTES]
            message = {**message, "headers": headers}
        self.messages.append(message)


async def _long_poll(scope: Any, receive: Any, send: Any) -> None:
    """Runs the status read once with the wait left to this loop; if the view asks for a
    wait, polls the action's status (one narrow query), and when it changed runs the read
    once more (authentication included), so that the answer is the view's own."""
    answer = _Held()
    await _run(scope, receive, answer.send, {long_poll.ON_LOOP: True})
    if answer.wait is not None:
        pk, seconds = answer.wait
        deadline = time.monotonic() + seconds
        left = asyncio.ensure_future(receive())  # http.disconnect, when the client goes away
        try:
            changed = False
            while not changed and time.monotonic() < deadline and not left.done():
                await asyncio.wait({left}, timeout=min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))
                try:
                    changed = not await sync_to_async(long_poll.awaits_reviewer)(pk)
                except DatabaseError:
                    # Stop waiting and let the view answer: it reads the action again, or
                    # Django's handler answers the failure as on any other request.
                    logger.warning("long-poll on action %s: the status check failed", pk, exc_info=True)
                    changed = True
        finally:
            left.cancel()
        if left.done() and not left.cancelled():
            return  # the client went away: nobody to answer
        if changed:
            answer = _Held()
            await _run(scope, _no_body, answer.send, {long_poll.ON_LOOP: True})
    for message in answer.messages:
        await send(message)


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def application(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        raise ValueError(f"Warden serves HTTP only, not {scope['type']}")
    if long_poll.may_wait(scope["method"], scope["path"]):
        await _long_poll(scope, receive, send)
    else:
        await _run(scope, receive, send, {})
