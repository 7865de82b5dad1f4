"""The audit browser's filters each have an index that leads with their column (audit.search),
and the indexes that only the browser reads cover sequenced events alone, so that writing an
event on a tool call's path enters none of them (decision 0022)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import QueryDict

import audit
from audit.search import filtered

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

BROWSER_ONLY = ("kind", "actor", "workflow", "system", "outcome", "action")


def _indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent'")
        return dict(cursor.fetchall())


def test_the_browser_only_indexes_leave_unsequenced_events_out() -> None:
    indexes = _indexes()
    for column in BROWSER_ONLY:
        definition = indexes[f"audit_{column}_sequenced"]
        assert f"({column}, seq)" in definition and definition.endswith("WHERE (seq IS NOT NULL)"), definition
    # A session's events are read before the sequencer numbers them too: that index stays whole.
    assert "WHERE" not in indexes["audit_session_seq"]
    assert not [name for name in indexes if name.endswith("_seq") and name != "audit_session_seq"], indexes


@pytest.mark.parametrize("column", [*BROWSER_ONLY, "session"])
def test_every_column_filter_of_the_browser_uses_its_index(column: str) -> None:
    audit.record("test.indexed", "system:test", outcome="ok", details={})
    query = QueryDict(mutable=True)
    query[column] = "x"
    events, _, errors = filtered(query)
    assert not errors
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the table is tiny: ask what could be used
        plan = events.order_by("-seq")[:101].explain()
    expected = "audit_session_seq" if column == "session" else f"audit_{column}_sequenced"
    assert expected in plan, plan
