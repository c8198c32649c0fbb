"""The drill sink passes the outbox channel contract (devkit/contracts.py)."""

import pytest

from devkit.contracts import OutboxChannelContract
from drills.models import DrillSinkDelivery
from tests.foundation.test_outbox_channels import row


class TestDrillSinkChannel(OutboxChannelContract):
    kind = "drill_sink"

    @pytest.fixture(autouse=True)
    def _settings(self, db, settings):
        self.settings = settings

    def message(self):
        return row(self.kind, "c:1", {"subject": "drill grant issued"})

    def failing_message(self):
        self.settings.DRILLS_SINK_ENABLED = False
        return row(self.kind, "c:2", {"subject": "drill grant issued"})

    def effects(self) -> int:
        return DrillSinkDelivery.objects.count()
