"""API tokens expire and carry scopes (issue 11). Tokens that exist already get 90 days
from now and the read and request scopes: never `credential`, which needs a new token
created after a fresh OTP."""

from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone


def existing_tokens_expire_and_lose_credentials(apps, schema_editor):
    ApiToken = apps.get_model("breakglass", "ApiToken")
    expires_at = timezone.now() + timedelta(days=90)
    ApiToken.objects.filter(expires_at__isnull=True).update(
        expires_at=expires_at, scopes=["read", "request"]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("breakglass", "0007_drill_credential_once_per_participant"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="created_with_fresh_otp",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=models.JSONField(default=list),
        ),
        migrations.RunPython(
            existing_tokens_expire_and_lose_credentials, migrations.RunPython.noop
        ),
        migrations.AlterField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(),
        ),
    ]
