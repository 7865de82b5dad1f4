"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web import metrics as warden_metrics


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"database: {type(exc).__name__}"
    return None


def _check_audit_writable() -> str | None:
    """Insert an event and roll it back: proves appends can happen, leaves nothing behind."""
    from audit.chain import _EVENT_TABLE

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_EVENT_TABLE} (at, kind, actor, session, workflow, system, data_type, action, "
                "outcome, details, hash, legacy_prev_hash, legacy_hmac) "
                "VALUES (%s, 'readyz.probe', '', '', '', '', '', '', '', '{}', '', '', '')",
                [timezone.now()],
            )
            transaction.set_rollback(True)
    except Exception as exc:  # noqa: BLE001
        return f"audit: {type(exc).__name__}"
    return None


def _audit_lag() -> dict[str, float | int] | None:
    """How far the sequencer is behind. Reported, not a readiness failure: appends still commit,
    and taking the web tier out would turn an audit delay into an outage (decision 0009)."""
    from audit.sequencer import lag

    try:
        pending, seconds = lag()
    except Exception:  # noqa: BLE001 - the database check reports the cause
        return None
    return {"pending": pending, "lag_seconds": round(seconds, 3)}


def _check_broker() -> str | None:
    from celery import current_app as app  # the project's app (config.celery), without importing config

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return None
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"broker: {type(exc).__name__}"
    return None


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers, the broker answers, and the audit trail can be appended to."""
    started = time.monotonic()
    problems = [p for p in (_check_database(), _check_broker(), _check_audit_writable()) if p]
    audit_lag = _audit_lag()
    warnings = []
    if audit_lag and audit_lag["lag_seconds"] > settings.WARDEN_AUDIT_MAX_LAG_SECONDS:
        warnings.append(f"audit: the sequencer is {audit_lag['lag_seconds']:.0f}s behind")
    body = {
        "status": "ready" if not problems else "not ready",
        "problems": problems,
        "warnings": warnings,
        "audit_sequencer": audit_lag,
        "checked_in_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return JsonResponse(body, status=200 if not problems else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    warden_metrics.refresh_gauges()
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
