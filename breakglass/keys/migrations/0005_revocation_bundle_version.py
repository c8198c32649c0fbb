from django.db import migrations, models


def mark_published(apps, schema_editor):
    """Revocations the latest bundle lists are published; the rest (hardened mode, waiting
    for offline signing) stay NULL, so the next bundle must carry them."""
    TrustBundle = apps.get_model("keys", "TrustBundle")
    RevokedCredential = apps.get_model("keys", "RevokedCredential")
    latest = TrustBundle.objects.order_by("-version").first()
    if latest is None:
        return
    payload = latest.document.get("payload", {})
    listed = [entry.get("jti") for entry in payload.get("revoked_jti") or []]
    for start in range(0, len(listed), 1000):
        RevokedCredential.objects.filter(jti__in=listed[start : start + 1000]).update(
            bundle_version=latest.version
        )


class Migration(migrations.Migration):
    dependencies = [
        ("keys", "0004_sealed_kits"),
    ]

    operations = [
        migrations.AddField(
            model_name="revokedcredential",
            name="bundle_version",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="revokedcredential",
            index=models.Index(
                condition=models.Q(("bundle_version__isnull", True)),
                fields=["expires_at"],
                name="keys_revoked_unpublished",
            ),
        ),
        migrations.RunPython(mark_published, migrations.RunPython.noop),
    ]
