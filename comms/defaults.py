"""Built-in update templates, one per state and audience. Installed by a data migration
and by seed_demo; editable in the admin afterwards.

Every reader sees an update beside its state ("Investigating — ...", the e-mail subject,
the Slack line), so the text never repeats the state's word, and each names the services
once: they read as a person would write them (tests/comms/test_update_wording.py renders
each one)."""

DEFAULT_TEMPLATES = [
    (
        "External: investigating",
        "investigating",
        "external",
        "We are looking into {{ impact }}.\nWe will post the next update by {{ next_update_at }}.",
    ),
    (
        "External: identified",
        "identified",
        "external",
        "We have found the cause of the problems with {{ affected_services }} and are "
        "working on a fix.\nNext update by {{ next_update_at }}.",
    ),
    (
        "External: monitoring",
        "monitoring",
        "external",
        "A fix for the problems with {{ affected_services }} is in place; we are watching "
        "to confirm that it holds.\nNext update by {{ next_update_at }}.",
    ),
    (
        "External: resolved",
        "resolved",
        "external",
        "Everything is back to normal for {{ affected_services }}. "
        "We are sorry for the disruption.",
    ),
    (
        "Internal: investigating",
        "investigating",
        "internal",
        "{{ severity }} {{ reference }}, {{ title }}: {{ impact }}; cause not known yet.\n"
        "Next internal update by {{ next_update_at }}.",
    ),
    (
        "Internal: identified",
        "identified",
        "internal",
        "{{ reference }}: cause found for {{ impact }}; fix in progress.\n"
        "Next internal update by {{ next_update_at }}.",
    ),
    (
        "Internal: monitoring",
        "monitoring",
        "internal",
        "{{ reference }}: fix deployed; watching to confirm that it holds.\n"
        "Next internal update by {{ next_update_at }}.",
    ),
    (
        "Internal: resolved",
        "resolved",
        "internal",
        "{{ reference }} is over: everything is back to normal for {{ affected_services }}. "
        "Postmortem to follow.",
    ),
]
