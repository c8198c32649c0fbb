from django.db import migrations, models


class Migration(migrations.Migration):
    """Separate from 0003: PostgreSQL cannot build the index in the transaction that just
    moved paths to their new CAs (pending foreign-key trigger events)."""

    dependencies = [("breakglass", "0003_ssh_path_options_probe_own_cas")]

    operations = [
        migrations.AddConstraint(
            model_name="backuppath",
            constraint=models.UniqueConstraint(
                condition=models.Q(("ssh_ca__isnull", False)),
                fields=("ssh_ca",),
                name="backup_path_own_ssh_ca",
                violation_error_message="Another path already uses this SSH CA: each SSH path needs its own CA.",
            ),
        ),
    ]
