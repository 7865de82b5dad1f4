"""The connector interface: how the gateway reaches an enterprise system.

A connector receives the ServiceCredential from the gateway; the model never sees it.
`execute` must be idempotent by `idempotency_key` (the ActionRequest id): called twice with
the same key, it does the work once and returns the same result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agents.connectors.scrub import error_text, scrub

if TYPE_CHECKING:
    from governance.models import ServiceCredential


@dataclass(frozen=True)
class ActionDescription:
    name: str
    mode: str
    data_objects: tuple[str, ...]
    description: str = ""
    params_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


class ConnectorError(Exception):
    """The system failed or refused. The message is shown to people: keep data out of it.
    Whatever a connector writes into it still passes through scrub(), so that a secret that
    slips into one never reaches a stored error, an alert or the audit trail."""

    def __init__(self, message: object = "", *, secrets: tuple[str, ...] = ()):
        super().__init__(scrub(message, secrets))


class Connector(ABC):
    id: str = ""

    @abstractmethod
    def describe(self) -> list[ActionDescription]:
        """The action types this connector offers."""

    @abstractmethod
    def execute(
        self,
        action: str,
        params: dict[str, Any],
        credential: ServiceCredential | None,
        idempotency_key: str,
        *,
        session: Any = None,
    ) -> dict[str, Any]:
        """Do the action. Returns {"data_object": name, "data": record | [records] | {...}}.

        `session` is the AgentSession, for connectors that act with per-session credentials."""

    def preview(
        self, action: str, params: dict[str, Any], credential: ServiceCredential | None = None
    ) -> dict[str, Any] | None:
        """What `action` would change, read from the system without changing anything, for the
        reviewer of a tier 3 request. None when this connector cannot tell (the default).

        Returns {"data_object": name, "record": {"id": ...}, "changes": [{"field": name,
        "current": value, "proposed": value}, ...]}. Raise ConnectorError when the record
        cannot be read; the request page then says the current value is unavailable and the
        reviewer still decides. Must be quick and must never write."""
        return None

    # --- credential rotation: create the new secret at the system, verify it works, switch to
    # it, revoke the old one. A failure before the switch leaves the old secret in place.

    def create_secret(self, credential: ServiceCredential) -> str:
        raise ConnectorError(f"connector {self.id!r} cannot rotate credentials")

    def verify_secret(self, credential: ServiceCredential, secret: str) -> None:
        """Raise ConnectorError unless `secret` works at the system."""

    def revoke_secret(self, credential: ServiceCredential, secret: str) -> None:
        """Make `secret` stop working at the system."""

    def rotate(self, credential: ServiceCredential) -> None:
        """Only here are both secrets known, so every failure leaves as a ConnectorError whose
        message has both scrubbed, and with no chained exception that could still print them."""
        old = credential.reveal() if credential.has_secret else ""
        new = ""
        try:
            new = self.create_secret(credential)
            try:
                self.verify_secret(credential, new)
            except Exception:
                self.revoke_secret(credential, new)  # do not leave a half-made key behind
                raise
            credential.set_secret(new)
            credential.rotation_failures, credential.last_rotation_error = 0, ""
            credential.save()
            if old:
                self.revoke_secret(credential, old)
        except Exception as exc:  # noqa: BLE001 - re-raised, scrubbed
            raise ConnectorError(error_text(exc, (old, new)), secrets=(old, new)) from None


_REGISTRY: dict[str, Connector] = {}


def register(connector: Connector) -> Connector:
    _REGISTRY[connector.id] = connector
    return connector


def get_connector(connector_id: str) -> Connector:
    from agents.connectors import demo, postgres  # noqa: F401 - registers the built-in connectors

    try:
        return _REGISTRY[connector_id]
    except KeyError:
        raise ConnectorError(f"no connector {connector_id!r} is installed") from None
