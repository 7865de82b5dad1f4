"""Signals governance sends to the layers above it.

Governance cannot import the runtime (the layers point one way: agents depends on governance),
yet withdrawing access must end the sessions that use it at once. So the service that
withdraws access sends `access_withdrawn` inside its transaction; the agents app answers by
ending the live sessions in that same transaction, and returns a callable that finishes the
termination (drop per-session roles, verify) once the service's transaction is over.
"""

from __future__ import annotations

from django.dispatch import Signal

# agent: AgentIdentity, workflow: Workflow | None (None: all of the agent's sessions),
# reason: str, actor: Actor. Receivers return a callable to run after the transaction, or None.
access_withdrawn = Signal()
