"""Delivery of notifications: email, and webhooks signed with HMAC-SHA256 over timestamp and body."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail


class WebhookFailed(Exception):
    pass


def sign(body: bytes, timestamp: int, secret: str) -> str:
    """`sha256=` + HMAC-SHA256(secret, "<timestamp>." + body). Receivers recompute it and reject
    timestamps older than a few minutes, which stops replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@shared_task(ignore_result=True, acks_late=True)
def notify(message: dict[str, Any]) -> None:
    # Webhooks first, each in its own task with its own retries: a mail server that fails
    # (or refuses this message) never keeps the webhooks from going out.
    for url in settings.WARDEN_WEBHOOK_URLS:
        deliver_webhook.delay(url, {k: v for k, v in message.items() if k != "recipients"})
    if message.get("recipients"):
        send_mail(message["subject"], message["body"], settings.WARDEN_MAIL_FROM, message["recipients"])


@shared_task(
    ignore_result=True,
    autoretry_for=(WebhookFailed,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def deliver_webhook(url: str, payload: dict[str, Any]) -> int:
    body = json.dumps({**payload, "sent_at": int(time.time())}, sort_keys=True).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Warden-Webhooks/1",
            "X-Warden-Timestamp": str(timestamp),
            "X-Warden-Signature": sign(body, timestamp, settings.WARDEN_WEBHOOK_SECRET),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.WARDEN_WEBHOOK_TIMEOUT) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise WebhookFailed(f"{url} answered {exc.code}") from None
        return int(exc.code)  # a 4xx will not get better by retrying
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookFailed(f"{url} unreachable: {exc}") from None


@shared_task(ignore_result=True, acks_late=True)
def enforce_campaign_deadlines() -> int:
    """Periodic: close campaigns past their deadline, applying their policy to undecided items."""
    from django.utils import timezone

    from approvals.services import campaign_enforce_deadline
    from governance.models import Campaign

    return sum(
        campaign_enforce_deadline(c)
        for c in Campaign.objects.filter(closed_at__isnull=True, deadline__lt=timezone.now())
    )


@shared_task(bind=True, ignore_result=True, acks_late=True)
def ciba_request_poll(self: Any, ciba_request_id: int, poll_no: int) -> None:
    """One poll of the IdP for a device approval (approvals/ciba.py); schedules the next one.
    Run eagerly (tests, no broker) it polls once: whoever runs it eagerly polls again."""
    from approvals import ciba

    following = ciba.ciba_request_poll(ciba_request_id, poll_no)
    if following is not None and not self.request.is_eager:
        countdown, next_no = following
        ciba_request_poll.apply_async((ciba_request_id, next_no), countdown=countdown)


@shared_task(ignore_result=True, acks_late=True)
def ciba_request_sweep() -> int:
    """Periodic: device approvals whose polling task was lost are polled again."""
    from approvals import ciba

    return ciba.ciba_request_sweep()
