"""Events are inserted without a seq: only the sequencer numbers them, by the one-time UPDATE the
append-only trigger allows (and only its own role holds; see audit.db_roles). An INSERT that
carries a seq would let the app put an event far ahead of the tree, which stops the sequencer
for good, so PostgreSQL refuses it (red team, 2026-11-23)."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_event_insert_unsequenced() RETURNS trigger AS $$
BEGIN
    IF NEW.seq IS NOT NULL THEN
        RAISE EXCEPTION 'audit_auditevent: an event is inserted without a seq; the sequencer numbers it'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_event_insert_unsequenced ON audit_auditevent;
CREATE TRIGGER audit_event_insert_unsequenced
    BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_insert_unsequenced();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_event_insert_unsequenced ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_insert_unsequenced();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_merkle_log")]

    operations = [migrations.RunPython(forward, backward)]
