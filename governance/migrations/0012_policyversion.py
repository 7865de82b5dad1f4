from django.db import migrations, models


def first_row(apps, schema_editor):
    apps.get_model("governance", "PolicyVersion").objects.get_or_create(id=1, defaults={"version": 1})


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0011_workflow_unlisted_destinations"),
    ]

    operations = [
        migrations.CreateModel(
            name="PolicyVersion",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("version", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(first_row, migrations.RunPython.noop),
    ]
