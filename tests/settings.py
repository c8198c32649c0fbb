"""Fast settings for the test suite: everything real except what only costs time."""

import os

os.environ.setdefault("BREAKGLASS_ENV", "test")

from breakglass.project.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if not os.environ.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Unit tests call services directly; tasks queued on commit go to an in-memory broker
# nobody reads. Integration tests start real workers against Redis (devkit/workers.py).
if not os.environ.get("BREAKGLASS_TEST_REAL_BROKER"):
    CELERY_BROKER_URL = "memory://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
# The audit table refuses TRUNCATE on PostgreSQL; Django's flush between transactional
# tests is the one sanctioned exception (breakglass/audit/migrations/0002_*).
if DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})  # noqa: F405
    _pg_options["options"] = (
        _pg_options.get("options", "") + " -c breakglass.audit_truncate=allow"
    ).strip()
STATUS_SITE_DIR = DATA_DIR / "test-status-site"  # noqa: F405
TRUST_PUBLISH_DIR = DATA_DIR / "test-trust"  # noqa: F405
# The webhook receivers in tests/comms/receivers.py listen on 127.0.0.1: allowed the way
# an operator allows an internal receiver. Tests of the refusals clear it.
COMMS_WEBHOOK_ALLOW = ["127.0.0.1/32"]
