"""The issuer is stored with the keys; processes configured otherwise sign with it anyway."""

from __future__ import annotations

import logging

import pytest
from django.core.management import CommandError, call_command

from breakglass.audit.models import AuditEvent
from breakglass.core import verify_bundle
from breakglass.keys import selectors, services
from breakglass.keys.models import Issuer


def test_keys_bootstrap_stores_the_configured_issuer(trust):
    assert Issuer.objects.get().url == "https://breakglass.test"
    assert AuditEvent.objects.filter(action="keys.issuer_set").count() == 1


def test_a_process_configured_otherwise_signs_the_bundle_with_the_stored_issuer(
    trust, settings, caplog, django_capture_on_commit_callbacks
):
    settings.BREAKGLASS_ISSUER = "http://127.0.0.1:8765"
    with caplog.at_level(logging.WARNING, logger="breakglass.keys.selectors"):
        with django_capture_on_commit_callbacks(execute=True):
            bundle = services.bundle_publish(reason="test")
        services.bundle_publish(reason="again")
    assert bundle.document["payload"]["issuer"] == "https://breakglass.test"
    warnings = [r for r in caplog.records if "set_issuer" in r.getMessage()]
    assert len(warnings) == 1
    assert "http://127.0.0.1:8765" in warnings[0].getMessage()


def test_set_issuer_without_confirm_states_the_consequence_and_changes_nothing(trust):
    with pytest.raises(CommandError, match="stop verifying.*--confirm"):
        call_command("set_issuer", "--issuer", "https://new.example")
    assert selectors.issuer_current() == "https://breakglass.test"


def test_set_issuer_with_confirm_re_signs_the_bundle_and_is_audited(
    trust, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("set_issuer", "--issuer", "https://new.example/", "--confirm")
    assert selectors.issuer_current() == "https://new.example"
    latest = selectors.bundle_latest()
    assert latest.document["payload"]["issuer"] == "https://new.example"
    verified = verify_bundle(latest.document, selectors.roots_export())
    assert verified.issuer == "https://new.example"
    event = AuditEvent.objects.get(action="keys.issuer_changed")
    assert event.data == {"issuer": "https://new.example", "previous": "https://breakglass.test"}


def test_set_issuer_refuses_a_value_with_spaces(trust):
    with pytest.raises(CommandError, match="one URL without spaces"):
        call_command("set_issuer", "--issuer", "https://a b", "--confirm")
    assert selectors.issuer_current() == "https://breakglass.test"
