"""The audit browser's filter indexes cover sequenced events only (decision 0022).

Every tool call writes audit events, and each event was entered into all ten indexes of the
table, five of them (kind, actor, workflow, system, outcome, each with seq) only for the audit
browser, which reads sequenced events alone. As partial indexes (WHERE seq IS NOT NULL) they
are left alone by the INSERT on the call's path; the sequencer's UPDATE that numbers an event
enters it, as that UPDATE did already (it changes seq, so it re-enters the row in every index).
The browser's `action` filter had no index at all; now it has one, at no cost to the INSERT.

On PostgreSQL the new indexes are built, and the old ones dropped, CONCURRENTLY: on a large log
neither blocks the tool calls that write events meanwhile. The new ones exist before the old
ones go, so the browser's filters always have an index."""

from django.db import migrations, models

from audit.online_index import AddIndexOnline, RemoveIndexOnline

SEQUENCED = models.Q(("seq__isnull", False))
COLUMNS = ("kind", "actor", "workflow", "system", "outcome")  # partial now; the `action` index is new


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("audit", "0005_refuse_insert_with_seq")]

    operations = [
        *(
            AddIndexOnline(
                model_name="auditevent",
                index=models.Index(fields=[column, "seq"], condition=SEQUENCED, name=f"audit_{column}_sequenced"),
            )
            for column in (*COLUMNS, "action")
        ),
        *(RemoveIndexOnline(model_name="auditevent", name=f"audit_{column}_seq") for column in COLUMNS),
    ]
