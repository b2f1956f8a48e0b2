from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dispatch", "0002_stored_positions_in_range"),
    ]

    operations = [
        migrations.AddField(
            model_name="ambulance",
            name="position_pushed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
