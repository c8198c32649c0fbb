from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def issuer_from_bundle(apps, schema_editor):
    """An existing deployment keeps the issuer its hosts already trust: the one in its
    latest bundle (not whatever this migrating process happens to be configured with)."""
    Issuer = apps.get_model("keys", "Issuer")
    TrustBundle = apps.get_model("keys", "TrustBundle")
    latest = TrustBundle.objects.order_by("-version").first()
    if latest is None:
        return  # keys_bootstrap stores it when keys are first made
    url = (latest.document.get("payload") or {}).get("issuer") or settings.BREAKGLASS_ISSUER
    Issuer.objects.create(id=1, url=url, set_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("keys", "0001_signing_keys_revocations_bundles")]

    operations = [
        migrations.CreateModel(
            name="Issuer",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(
                        default=1, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("url", models.CharField(max_length=2048)),
                ("set_at", models.DateTimeField(default=timezone.now)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(id=1), name="issuer_single_row")
                ]
            },
        ),
        migrations.RunPython(issuer_from_bundle, migrations.RunPython.noop),
    ]
