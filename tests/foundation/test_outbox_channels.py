"""The built-in e-mail channel passes the outbox channel contract, and every registered
channel has a contract test class somewhere in the suite."""

import importlib

import pytest
from django.utils import timezone

from breakglass.outbox.handlers import _HANDLERS
from breakglass.outbox.models import OutboxMessage
from devkit.contracts import OutboxChannelContract

# Where each channel's contract class lives (tests mirror the code).
CONTRACT_CLASSES = {
    "email": "tests.foundation.test_outbox_channels:TestEmailChannel",
    "comms_email": "tests.comms.test_outbox_channels:TestCommsEmailChannel",
    "comms_webhook": "tests.comms.test_outbox_channels:TestCommsWebhookChannel",
    "comms_fanout": "tests.comms.test_outbox_channels:TestCommsFanoutChannel",
    "comms_fanout_batch": "tests.comms.test_outbox_channels:TestCommsFanoutBatchChannel",
    "comms_status_export": "tests.comms.test_outbox_channels:TestCommsStatusExportChannel",
    "drill_sink": "tests.drills.test_outbox_channels:TestDrillSinkChannel",
}


def row(kind: str, key: str, payload: dict, recipient: str = "") -> OutboxMessage:
    return OutboxMessage.objects.create(
        kind=kind,
        idempotency_key=key,
        payload=payload,
        recipient=recipient,
        next_attempt_at=timezone.now(),
    )


def test_every_registered_channel_passes_the_contract():
    registered = {kind for kind in _HANDLERS if not kind.startswith("test_")}
    assert registered == set(CONTRACT_CLASSES)
    for kind, where in CONTRACT_CLASSES.items():
        module, name = where.split(":")
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, OutboxChannelContract) and cls.kind == kind


class TestEmailChannel(OutboxChannelContract):
    kind = "email"

    @pytest.fixture(autouse=True)
    def _sink(self, db, smtp_sink, settings):
        smtp_sink.configure(settings)
        self.sink = smtp_sink

    def message(self):
        return row("email", "c:1", {"subject": "S", "body": "B", "to": ["a@example.test"]})

    def failing_message(self):
        return row("email", "c:2", {"subject": "S", "body": "B", "to": []})

    def effects(self) -> int:
        return len(self.sink.messages)
