from django.db import migrations


def install(apps, schema_editor):
    from comms.defaults import DEFAULT_TEMPLATES

    UpdateTemplate = apps.get_model("comms", "UpdateTemplate")
    for name, state, audience, body in DEFAULT_TEMPLATES:
        UpdateTemplate.objects.get_or_create(
            name=name, defaults={"state": state, "audience": audience, "body": body}
        )


class Migration(migrations.Migration):
    dependencies = [("comms", "0001_incidents_status_updates_and_delivery")]
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
