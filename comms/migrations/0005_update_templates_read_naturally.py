"""The default update templates reworded so they read as a person would write them (no
"Investigating — We are investigating", no "DNS. Impact: DNS: Major outage"). A template
still holding the old default text gets the new one; one someone edited is left alone."""

from django.db import migrations

OLD_BODIES = {
    "External: investigating": "We are investigating problems with {{ affected_services }}. Impact: {{ impact }}.\nWe will post the next update by {{ next_update_at }}.",
    "External: identified": "We have identified the cause of the problems with {{ affected_services }} and are working on a fix.\nNext update by {{ next_update_at }}.",
    "External: monitoring": "A fix for {{ affected_services }} is in place and we are monitoring the results.\nNext update by {{ next_update_at }}.",
    "External: resolved": "This incident is resolved: {{ affected_services }} are operating normally. We are sorry for the disruption.",
    "Internal: investigating": "{{ severity }} {{ reference }} {{ title }}: investigating. Impact: {{ impact }}.\nNext internal update by {{ next_update_at }}.",
    "Internal: identified": "{{ reference }}: cause identified. Impact: {{ impact }}. Next update by {{ next_update_at }}.",
    "Internal: monitoring": "{{ reference }}: fix deployed, monitoring. Next update by {{ next_update_at }}.",
    "Internal: resolved": "{{ reference }} resolved. Postmortem to follow.",
}


def reword(apps, schema_editor):
    from comms.defaults import DEFAULT_TEMPLATES

    UpdateTemplate = apps.get_model("comms", "UpdateTemplate")
    for name, _state, _audience, body in DEFAULT_TEMPLATES:
        UpdateTemplate.objects.filter(name=name, body=OLD_BODIES[name]).update(body=body)


class Migration(migrations.Migration):
    dependencies = [("comms", "0004_subscription_changes_need_confirmation")]
    operations = [migrations.RunPython(reword, migrations.RunPython.noop)]
