"""Built-in update templates, one per state and audience. Installed by a data migration
and by seed_demo; editable in the admin afterwards."""

DEFAULT_TEMPLATES = [
    (
        "External: investigating",
        "investigating",
        "external",
        "We are investigating problems with {{ affected_services }}. Impact: {{ impact }}.\n"
        "We will post the next update by {{ next_update_at }}.",
    ),
    (
        "External: identified",
        "identified",
        "external",
        "We have identified the cause of the problems with {{ affected_services }} and are "
        "working on a fix.\nNext update by {{ next_update_at }}.",
    ),
    (
        "External: monitoring",
        "monitoring",
        "external",
        "A fix for {{ affected_services }} is in place and we are monitoring the results.\n"
        "Next update by {{ next_update_at }}.",
    ),
    (
        "External: resolved",
        "resolved",
        "external",
        "This incident is resolved: {{ affected_services }} are operating normally. "
        "We are sorry for the disruption.",
    ),
    (
        "Internal: investigating",
        "investigating",
        "internal",
        "{{ severity }} {{ reference }} {{ title }}: investigating. Impact: {{ impact }}.\n"
        "Next internal update by {{ next_update_at }}.",
    ),
    (
        "Internal: identified",
        "identified",
        "internal",
        "{{ reference }}: cause identified. Impact: {{ impact }}. Next update by {{ next_update_at }}.",
    ),
    (
        "Internal: monitoring",
        "monitoring",
        "internal",
        "{{ reference }}: fix deployed, monitoring. Next update by {{ next_update_at }}.",
    ),
    (
        "Internal: resolved",
        "resolved",
        "internal",
        "{{ reference }} resolved. Postmortem to follow.",
    ),
]
