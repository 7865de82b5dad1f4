"""Every API error in one shape: RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler

MAX_DEPTH = 32


def problem(status_code: int, title: str, detail: str, *, slug: str, **extra: Any) -> Response:
    body = {"type": f"urn:warden:problem:{slug}", "title": title, "status": status_code, "detail": detail, **extra}
    return Response(body, status=status_code, content_type="application/problem+json")


def handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        return problem(413, "Request too large", "the request body is larger than the API accepts", slug="too-large")
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real server error: Django's handler logs it and answers 500
    slug = {
        400: "invalid-request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        406: "not-acceptable",
        413: "too-large",
        415: "unsupported-media-type",
        429: "rate-limited",
        503: "unavailable",
    }.get(response.status_code, "error")
    data = response.data
    if isinstance(exc, (Http404, exceptions.NotFound)):
        detail = "no such resource, or it is not yours"
    elif isinstance(exc, (PermissionDenied, exceptions.PermissionDenied)):
        detail = str(getattr(exc, "detail", "")) or "you may not do this"
    elif isinstance(data, dict) and set(data) == {"detail"}:
        detail = str(data["detail"])
    else:
        detail = "the request is not valid: see errors"
    extra = {"errors": data} if detail.endswith("see errors") else {}
    result = problem(response.status_code, response.status_text, detail, slug=slug, **extra)
    for header in ("Retry-After", "WWW-Authenticate", "Allow"):
        if header in response:
            result[header] = response[header]
    wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
    if wait is not None:
        result["Retry-After"] = str(int(wait) + 1)
    return result


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] or [level + 1])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] or [level + 1])
    return level


class BoundedJSONParser(JSONParser):
    """JSON that is not absurdly nested (deep nesting costs recursion, and is never needed here)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        if _depth(data) > MAX_DEPTH:
            raise exceptions.ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
        return data
