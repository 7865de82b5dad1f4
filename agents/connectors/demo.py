"""Connectors for the demo systems (demo_systems app): a CRM, a helpdesk and outbound mail."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from agents.connectors.base import ActionDescription, Connector, ConnectorError, register
from demo_systems.models import ApiKey, Comment, Customer, IdempotencyRecord, Note, Refund, Ticket

if TYPE_CHECKING:
    from governance.models import ServiceCredential

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _customer(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "ssn": c.ssn,
        "credit_limit": float(c.credit_limit),
        "status": c.status,
    }


def _ticket(t: Ticket) -> dict[str, Any]:
    return {
        "id": t.id,
        "subject": t.subject,
        "body": t.body,
        "requester_email": t.requester_email,
        "status": t.status,
        "customer_id": t.customer_id,
    }


class DemoConnector(Connector):
    """Shared plumbing: API-key check, dispatch, and idempotent writes."""

    reads: dict[str, Handler] = {}
    writes: dict[str, Handler] = {}
    previews: dict[str, Handler] = {}
    needs_key = True

    def _authenticate(self, credential: ServiceCredential | None) -> None:
        if not self.needs_key:
            return
        if credential is None:
            raise ConnectorError(f"{self.id}: no credential was supplied")
        key = credential.reveal()
        if not ApiKey.objects.filter(system=self.id, key_hash=ApiKey.hash(key), active=True).exists():
            raise ConnectorError(f"{self.id}: the API key was refused")

    def create_secret(self, credential: ServiceCredential) -> str:
        if not self.needs_key:
            raise ConnectorError(f"{self.id}: this system uses no credential")
        from demo_systems.seed import issue_api_key

        return issue_api_key(self.id)

    def verify_secret(self, credential: ServiceCredential, secret: str) -> None:
        if not ApiKey.objects.filter(system=self.id, key_hash=ApiKey.hash(secret), active=True).exists():
            raise ConnectorError(f"{self.id}: the new API key does not work")

    def revoke_secret(self, credential: ServiceCredential, secret: str) -> None:
        from django.utils import timezone

        ApiKey.objects.filter(system=self.id, key_hash=ApiKey.hash(secret)).update(
            active=False, revoked_at=timezone.now()
        )

    def execute(
        self,
        action: str,
        params: dict[str, Any],
        credential: ServiceCredential | None,
        idempotency_key: str,
        *,
        session: Any = None,
    ) -> dict[str, Any]:
        try:
            self._authenticate(credential)
        except ConnectorError:
            if credential is None:  # nothing to read again
                raise
            # The credential may have been rotated since the gateway read it: read it again, once.
            from governance.models import ServiceCredential as Credential

            fresh = Credential.objects.filter(pk=credential.pk).first()
            if fresh is None or fresh.secret_encrypted == credential.secret_encrypted:
                raise
            self._authenticate(fresh)
        if action in self.reads:
            return self.reads[action](params)
        if action not in self.writes:
            raise ConnectorError(f"{self.id}: unknown action {action!r}")
        done = IdempotencyRecord.objects.filter(system=self.id, key=idempotency_key).first()
        if done is not None:
            return done.response
        try:
            with transaction.atomic():
                response = self.writes[action](params)
                IdempotencyRecord.objects.create(system=self.id, key=idempotency_key, action=action, response=response)
        except IntegrityError:
            # The same key won a race in another process: its result is the result.
            return IdempotencyRecord.objects.get(system=self.id, key=idempotency_key).response
        return response

    def preview(
        self, action: str, params: dict[str, Any], credential: ServiceCredential | None = None
    ) -> dict[str, Any] | None:
        if action not in self.previews:
            return None
        self._authenticate(credential)  # a reviewer's look at the record is still the system's read
        try:
            return self.previews[action](params)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            raise ConnectorError(f"{self.id}: the parameters do not name a record") from None

    def describe(self) -> list[ActionDescription]:
        return [d for d in DESCRIPTIONS if d.name in self.reads or d.name in self.writes]


def _get_customer(params: dict[str, Any]) -> dict[str, Any]:
    customer = Customer.objects.filter(id=params["customer_id"]).first()
    if customer is None:
        raise ConnectorError("crm: no such customer")
    return {"data_object": "crm.customer", "data": _customer(customer)}


def _search_customers(params: dict[str, Any]) -> dict[str, Any]:
    q = params["query"]
    found = Customer.objects.filter(name__icontains=q) | Customer.objects.filter(email__icontains=q)
    return {"data_object": "crm.customer", "data": [_customer(c) for c in found.order_by("id")[:20]]}


def _list_refunds(params: dict[str, Any]) -> dict[str, Any]:
    refunds = Refund.objects.filter(customer_id=params["customer_id"]).order_by("created_at")
    return {
        "data_object": "crm.refund",
        "data": [
            {"customer_id": r.customer_id, "amount": float(r.amount), "currency": r.currency, "reason": r.reason}
            for r in refunds
        ],
    }


def _issue_refund(params: dict[str, Any]) -> dict[str, Any]:
    if not Customer.objects.filter(id=params["customer_id"]).exists():
        raise ConnectorError("crm: no such customer")
    refund = Refund.objects.create(
        customer_id=params["customer_id"],
        amount=Decimal(str(params["amount"])),
        currency=params.get("currency", "EUR"),
        reason=params["reason"],
    )
    return {
        "data_object": "crm.refund",
        "data": {
            "refund_id": refund.id,
            "customer_id": refund.customer_id,
            "amount": float(refund.amount),
            "currency": refund.currency,
        },
    }


def _add_note(params: dict[str, Any]) -> dict[str, Any]:
    if not Customer.objects.filter(id=params["customer_id"]).exists():
        raise ConnectorError("crm: no such customer")
    note = Note.objects.create(customer_id=params["customer_id"], body=params["body"])
    return {"data_object": "crm.note", "data": {"note_id": note.id, "customer_id": note.customer_id}}


def _update_credit_limit(params: dict[str, Any]) -> dict[str, Any]:
    updated = Customer.objects.filter(id=params["customer_id"]).update(
        credit_limit=Decimal(str(params["credit_limit"]))
    )
    if not updated:
        raise ConnectorError("crm: no such customer")
    return {
        "data_object": "crm.customer",
        "data": {"id": params["customer_id"], "credit_limit": params["credit_limit"]},
    }


def _delete_customer(params: dict[str, Any]) -> dict[str, Any]:
    deleted, _ = Customer.objects.filter(id=params["customer_id"]).delete()
    return {"data_object": "crm.customer", "data": {"id": params["customer_id"], "deleted": bool(deleted)}}


# --- previews: the current values next to the proposed ones, read without writing -----------------


def _change(field: str, current: Any, proposed: Any) -> dict[str, Any]:
    return {"field": field, "current": current, "proposed": proposed}


def _customer_or_error(params: dict[str, Any]) -> Customer:
    customer = Customer.objects.filter(id=str(params["customer_id"])).first()
    if customer is None:
        raise ConnectorError("crm: no such customer")
    return customer


def _preview_credit_limit(params: dict[str, Any]) -> dict[str, Any]:
    customer = _customer_or_error(params)
    return {
        "data_object": "crm.customer",
        "record": {"id": customer.id},
        "changes": [_change("credit_limit", float(customer.credit_limit), params["credit_limit"])],
    }


def _preview_refund(params: dict[str, Any]) -> dict[str, Any]:
    customer = _customer_or_error(params)
    currency = params.get("currency", "EUR")
    earlier = list(Refund.objects.filter(customer=customer, currency=currency).values_list("amount", flat=True))
    total = sum(earlier, Decimal(0))
    return {
        "data_object": "crm.customer",
        "record": {"id": customer.id},
        "changes": [
            _change(f"refunds in {currency}", len(earlier), len(earlier) + 1),
            _change(f"refunded in {currency}", float(total), float(total + Decimal(str(params["amount"])))),
        ],
    }


def _preview_note(params: dict[str, Any]) -> dict[str, Any]:
    customer = _customer_or_error(params)
    notes = Note.objects.filter(customer=customer).count()
    return {
        "data_object": "crm.customer",
        "record": {"id": customer.id},
        "changes": [_change("notes", notes, notes + 1)],
    }


def _preview_delete(params: dict[str, Any]) -> dict[str, Any]:
    customer = _customer_or_error(params)
    return {
        "data_object": "crm.customer",
        "record": {"id": customer.id},
        "changes": [_change("record", "exists", "deleted"), _change("status", customer.status, "deleted")],
    }


def _ticket_or_error(params: dict[str, Any]) -> Ticket:
    ticket = Ticket.objects.filter(id=str(params["ticket_id"])).first()
    if ticket is None:
        raise ConnectorError("ticketing: no such ticket")
    return ticket


def _preview_status(params: dict[str, Any]) -> dict[str, Any]:
    ticket = _ticket_or_error(params)
    return {
        "data_object": "ticketing.ticket",
        "record": {"id": ticket.id},
        "changes": [_change("status", ticket.status, params["status"])],
    }


def _preview_comment(params: dict[str, Any]) -> dict[str, Any]:
    ticket = _ticket_or_error(params)
    public = bool(params.get("public", False))
    comments = Comment.objects.filter(ticket=ticket, public=public).count()
    kind = "public comments (the requester sees them)" if public else "internal comments"
    return {
        "data_object": "ticketing.ticket",
        "record": {"id": ticket.id},
        "changes": [_change(kind, comments, comments + 1)],
    }


def _get_ticket(params: dict[str, Any]) -> dict[str, Any]:
    ticket = Ticket.objects.filter(id=params["ticket_id"]).first()
    if ticket is None:
        raise ConnectorError("ticketing: no such ticket")
    return {"data_object": "ticketing.ticket", "data": _ticket(ticket)}


def _search_tickets(params: dict[str, Any]) -> dict[str, Any]:
    tickets = Ticket.objects.all().order_by("id")
    if params.get("status"):
        tickets = tickets.filter(status=params["status"])
    if params.get("query"):
        tickets = tickets.filter(subject__icontains=params["query"])
    return {"data_object": "ticketing.ticket", "data": [_ticket(t) for t in tickets[:20]]}


def _add_comment(params: dict[str, Any]) -> dict[str, Any]:
    if not Ticket.objects.filter(id=params["ticket_id"]).exists():
        raise ConnectorError("ticketing: no such ticket")
    comment = Comment.objects.create(
        ticket_id=params["ticket_id"], body=params["body"], public=bool(params.get("public", False))
    )
    return {"data_object": "ticketing.comment", "data": {"comment_id": comment.id, "ticket_id": comment.ticket_id}}


def _set_status(params: dict[str, Any]) -> dict[str, Any]:
    if not Ticket.objects.filter(id=params["ticket_id"]).update(status=params["status"]):
        raise ConnectorError("ticketing: no such ticket")
    return {"data_object": "ticketing.ticket", "data": {"id": params["ticket_id"], "status": params["status"]}}


def _send_email(params: dict[str, Any]) -> dict[str, Any]:
    sent = send_mail(params["subject"], params["body"], settings.WARDEN_MAIL_FROM, list(params["recipients"]))
    return {"data_object": "mail.message", "data": {"sent": sent, "recipients": list(params["recipients"])}}


class DemoCRM(DemoConnector):
    id = "demo_crm"
    reads = {
        "crm.get_customer": _get_customer,
        "crm.search_customers": _search_customers,
        "crm.list_refunds": _list_refunds,
    }
    writes = {
        "crm.issue_refund": _issue_refund,
        "crm.add_note": _add_note,
        "crm.update_credit_limit": _update_credit_limit,
        "crm.delete_customer": _delete_customer,
    }
    previews = {
        "crm.issue_refund": _preview_refund,
        "crm.add_note": _preview_note,
        "crm.update_credit_limit": _preview_credit_limit,
        "crm.delete_customer": _preview_delete,
    }


class DemoTicketing(DemoConnector):
    id = "demo_ticketing"
    reads = {"ticketing.get_ticket": _get_ticket, "ticketing.search_tickets": _search_tickets}
    writes = {"ticketing.add_comment": _add_comment, "ticketing.set_status": _set_status}
    previews = {"ticketing.add_comment": _preview_comment, "ticketing.set_status": _preview_status}


class Mail(DemoConnector):
    """Outbound mail through Django's email backend (SMTP in production, the outbox in tests)."""

    id = "smtp"
    needs_key = False
    writes = {"mail.send_email": _send_email}


DESCRIPTIONS = [
    ActionDescription("crm.get_customer", "read", ("crm.customer",), "Look up one customer by id."),
    ActionDescription("crm.search_customers", "read", ("crm.customer",), "Find customers by name or email."),
    ActionDescription("crm.list_refunds", "read", ("crm.refund",), "Refunds issued to one customer."),
    ActionDescription("crm.issue_refund", "write", ("crm.refund",), "Refund an amount to a customer."),
    ActionDescription("crm.add_note", "write", ("crm.note",), "Add an internal note to a customer."),
    ActionDescription("crm.update_credit_limit", "write", ("crm.customer",), "Change a credit limit."),
    ActionDescription("crm.delete_customer", "write", ("crm.customer",), "Delete a customer record."),
    ActionDescription("ticketing.get_ticket", "read", ("ticketing.ticket",), "Read one ticket."),
    ActionDescription("ticketing.search_tickets", "read", ("ticketing.ticket",), "Find tickets."),
    ActionDescription("ticketing.add_comment", "write", ("ticketing.comment",), "Comment on a ticket."),
    ActionDescription("ticketing.set_status", "write", ("ticketing.ticket",), "Change a ticket's status."),
    ActionDescription("mail.send_email", "write", ("mail.message",), "Send an email."),
]

for _connector in (DemoCRM(), DemoTicketing(), Mail()):
    register(_connector)


def _post_webhook(params: dict[str, Any]) -> dict[str, Any]:
    import json
    import urllib.error
    import urllib.request

    body = json.dumps(params["event"], sort_keys=True).encode()
    request = urllib.request.Request(
        params["url"], data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "Warden/1"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise ConnectorError(f"hooks: the receiver answered {exc.code}") from None
    except (urllib.error.URLError, OSError):
        raise ConnectorError("hooks: the receiver cannot be reached") from None
    return {"data_object": "hooks.event", "data": {"status": status}}


class Webhook(DemoConnector):
    """Posts JSON events to partner URLs (only those the workflow lists as destinations)."""

    id = "webhook"
    needs_key = False
    writes = {"hooks.post": _post_webhook}


DESCRIPTIONS.append(ActionDescription("hooks.post", "write", ("hooks.event",), "Post a JSON event."))
register(Webhook())
