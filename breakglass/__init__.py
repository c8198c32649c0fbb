"""Breakglass: emergency access that keeps working when everything else is down.

This package is deliberately import-free: the Django-free core (`breakglass.core`: the
offline verifier, token and bundle formats, the hash chain) runs inside other teams'
production systems, where importing Django or Celery would be both slow and a liability.

Rooms: `project` (settings, URLs, the Celery app, schedules), `access` (the registry,
grants and break-the-glass), the foundation apps `accounts`, `audit`, `keys` and
`outbox`, and `core`. See docs/dev/map.md.
"""
