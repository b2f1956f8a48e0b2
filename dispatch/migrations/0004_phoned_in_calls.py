import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """Calls taken by phone: a case without a citizen account, with the caller's phone and name as
    typed by the dispatcher who took it."""

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("dispatch", "0003_unit_position_pushed"),
    ]

    operations = [
        migrations.AlterField(
            model_name="case",
            name="caller",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="cases",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="case",
            name="source",
            field=models.CharField(
                choices=[("tap", "One-key tap 一键呼救"), ("phone", "Phoned in 电话报警")], default="tap", max_length=8
            ),
        ),
        migrations.AddField(
            model_name="case",
            name="caller_phone",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name="case",
            name="caller_name",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddField(
            model_name="case",
            name="reported_address",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name="case",
            name="taken_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="case",
            constraint=models.UniqueConstraint(
                condition=models.Q(("idempotency_key__isnull", False), ("source", "phone")),
                fields=("taken_by", "idempotency_key"),
                name="case_taker_idempotency_key",
            ),
        ),
    ]
