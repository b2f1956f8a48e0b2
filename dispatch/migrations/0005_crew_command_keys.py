import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("dispatch", "0004_phoned_in_calls"),
    ]

    operations = [
        migrations.CreateModel(
            name="CrewCommand",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=255)),
                ("fingerprint", models.CharField(max_length=64)),
                ("response_json", models.JSONField()),
                ("created_at", models.DateTimeField()),
                (
                    "ambulance",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="dispatch.ambulance"
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("ambulance", "key"), name="crew_command_unit_key")],
            },
        ),
    ]
