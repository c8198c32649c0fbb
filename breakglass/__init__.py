"""Breakglass: emergency access that keeps working when everything else is down.

This package is deliberately import-free: the offline verifier (`breakglass.verifier`)
and the Django-free helpers in `breakglass.lib` run inside other teams' production
systems, where importing Django or Celery would be both slow and a liability.
The Celery app lives in `breakglass.celery_app` for that reason.
"""
