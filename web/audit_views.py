"""The audit browser: search, a session's timeline, verification with progress, exports.

The pages live above governance so that who may see them is the one rule of
governance.roles (Capability.AUDIT); the searches themselves are audit.search's selectors."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.chain import label
from audit.export import iter_csv, iter_jsonl
from audit.models import AuditEvent, Checkpoint, VerificationRun
from audit.search import PAGE_SIZE, filtered, inclusion
from governance.roles import Capability, can


def _require_auditor(request: HttpRequest) -> None:
    if not can(request.user, Capability.AUDIT):
        raise PermissionDenied


@login_required
@require_GET
def browse(request: HttpRequest) -> HttpResponse:
    """Keyset pagination by seq: the next page is `before=<last seq>`, fast at any depth."""
    _require_auditor(request)
    events, values, errors = filtered(request.GET)
    before = request.GET.get("before", "")
    if before.isdigit():
        events = events.filter(seq__lt=int(before))
    page = list(events.order_by("-seq")[: PAGE_SIZE + 1]) if not errors else []
    query = urlencode({k: v for k, v in values.items() if v})
    return render(
        request,
        "audit/browse.html",
        {
            "events": page[:PAGE_SIZE],
            "next_before": page[PAGE_SIZE - 1].seq if len(page) > PAGE_SIZE else None,
            "values": values,
            "errors": errors,
            "query": query,
            "first_page": not before,
            "runs": VerificationRun.objects.order_by("-started_at")[:1],
            "pending": AuditEvent.objects.filter(seq__isnull=True).count(),
            "checkpoint": Checkpoint.objects.order_by("-tree_size").values("tree_size", "signed_at").first(),
        },
    )


@login_required
@require_GET
def event_detail(request: HttpRequest, seq: int) -> HttpResponse:
    _require_auditor(request)
    event = get_object_or_404(AuditEvent, seq=seq)
    return render(request, "audit/event.html", {"event": event, "inclusion": inclusion(seq)})


@login_required
@require_GET
def session_timeline(request: HttpRequest, session: str) -> HttpResponse:
    _require_auditor(request)
    events = list(AuditEvent.objects.filter(session=session, seq__isnull=False).order_by("seq")[:2000])
    rows = [(event, json.dumps(event.details, indent=2, sort_keys=True, ensure_ascii=False)) for event in events]
    return render(request, "audit/timeline.html", {"session": session, "events": events, "rows": rows})


@login_required
@require_POST
def verify_start(request: HttpRequest) -> HttpResponse:
    from audit.tasks import verify_chain

    _require_auditor(request)
    run = VerificationRun.objects.create(started_by=label(request.user), total=AuditEvent.objects.count())
    verify_chain.delay(run.pk)
    return redirect("audit:verify_status", pk=run.pk)


@login_required
@require_GET
def verify_status(request: HttpRequest, pk: int) -> HttpResponse:
    _require_auditor(request)
    run = get_object_or_404(VerificationRun, pk=pk)
    template = "audit/_verify_progress.html" if request.headers.get("HX-Request") else "audit/verify.html"
    return render(request, template, {"run": run})


@login_required
@require_GET
def export(request: HttpRequest, fmt: str) -> HttpResponse | StreamingHttpResponse:
    """Streamed, so memory stays flat however many events match."""
    _require_auditor(request)
    events, _, errors = filtered(request.GET)
    if errors:
        return HttpResponse("\n".join(errors), status=400, content_type="text/plain")
    if fmt == "jsonl":
        response = StreamingHttpResponse(iter_jsonl(queryset=events), content_type="application/x-ndjson")
    else:
        response = StreamingHttpResponse(iter_csv(queryset=events), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="warden-audit-{stamp}.{fmt}"'
    return response
