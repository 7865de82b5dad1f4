"""The (status, expires_at) index covers open actions only (decision 0022): the sweeper, the
approval queue, the queue-depth metric and the recovery of approved actions read those
(awaiting_approval, approved); every allowed tool call's row entered it too. The reviewers'
history (tier 3, newest first), which could use that index only when filtered by outcome, gets
its own partial index. Built, then the old one dropped, CONCURRENTLY on PostgreSQL
(audit.online_index)."""

from django.db import migrations, models

from audit.online_index import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("agents", "0008_agentsession_facts")]

    operations = [
        AddIndexOnline(
            model_name="actionrequest",
            index=models.Index(
                fields=["status", "expires_at"],
                condition=models.Q(status__in=["awaiting_approval", "approved"]),
                name="action_open_expiry",
            ),
        ),
        AddIndexOnline(
            model_name="actionrequest",
            index=models.Index(fields=["-created_at"], condition=models.Q(tier=3), name="action_reviewed_newest"),
        ),
        RemoveIndexOnline(model_name="actionrequest", name="action_status_expiry"),
    ]
