"""Named system actors: who is recorded when no person acts. One name each, used everywhere."""

from __future__ import annotations

GATEWAY = "system:gateway"  # the enforcement point deciding and executing tool calls
RUNNER = "system:runner"  # the built-in Claude runner in a Celery worker
SWEEPER = "system:sweeper"  # the periodic sweep: expiries, stuck sessions, orphaned roles
WARDEN = "system:warden"  # Warden itself: alerts, terminations, verification
RECERTIFICATION = "system:recertification"  # campaign deadlines
ROTATION = "system:rotation"  # scheduled credential rotation

ALL = frozenset({GATEWAY, RUNNER, SWEEPER, WARDEN, RECERTIFICATION, ROTATION})
