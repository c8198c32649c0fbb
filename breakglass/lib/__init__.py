"""Django-free building blocks: only the standard library and `cryptography`.

Nothing in this package may import Django or Celery: the offline verifier and
other teams' services import it during an outage.
"""
