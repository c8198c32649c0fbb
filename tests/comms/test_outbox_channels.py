"""Every comms delivery channel passes the outbox channel contract (devkit/contracts.py)."""

import pytest

from breakglass.outbox.models import OutboxMessage
from comms import webhooks
from devkit.contracts import OutboxChannelContract
from devkit.receivers import Receiver
from devkit.smtp import _free_port
from tests.comms.conftest import subscriber_make
from tests.foundation.test_outbox_channels import row


class TestCommsEmailChannel(OutboxChannelContract):
    kind = "comms_email"

    @pytest.fixture(autouse=True)
    def _sink(self, db, smtp_sink, settings):
        smtp_sink.configure(settings)
        self.sink, self.settings = smtp_sink, settings

    def message(self):
        payload = {"subject": "S", "body": "B", "to": ["a@example.test"], "headers": {}}
        return row(self.kind, "c:1", payload)

    def failing_message(self):
        self.settings.EMAIL_PORT = _free_port()  # nothing listens there
        return row(self.kind, "c:2", {"subject": "S", "body": "B", "to": ["a@example.test"]})

    def effects(self) -> int:
        return len(self.sink.messages)


class TestCommsWebhookChannel(OutboxChannelContract):
    kind = "comms_webhook"

    @pytest.fixture(autouse=True)
    def _receivers(self, published, comms_lead):
        self.update, self.owner = published, comms_lead  # only comms leads manage webhooks
        with Receiver("ok") as ok, Receiver("error") as error:
            self.ok, self.error = ok, error
            yield

    def _row(self, receiver, key):
        hook = webhooks.webhook_create(name=key, url=receiver.url, owner=self.owner)
        return row(self.kind, key, {"webhook_id": hook.pk, "update_id": self.update.pk})

    def message(self):
        return self._row(self.ok, "c:1")

    def failing_message(self):
        return self._row(self.error, "c:2")

    def effects(self) -> int:
        return len(self.ok.accepted)


class TestCommsFanoutChannel(OutboxChannelContract):
    kind = "comms_fanout"

    @pytest.fixture(autouse=True)
    def _update(self, published):
        self.update = published
        subscriber_make("reader@example.test")  # an audience of one: one batch

    def message(self):
        return OutboxMessage.objects.get(kind=self.kind, source=self.update.outbox_source)

    def failing_message(self):
        return row(self.kind, "c:2", {"update_id": 10**9})  # no such update

    def effects(self) -> int:
        return OutboxMessage.objects.filter(kind="comms_fanout_batch").count()


class TestCommsFanoutBatchChannel(OutboxChannelContract):
    kind = "comms_fanout_batch"

    @pytest.fixture(autouse=True)
    def _update(self, published, commander):
        self.update, self.user = published, commander

    def message(self):
        return row(
            self.kind, "c:1", {"update_id": self.update.pk, "group": "user", "ids": [self.user.pk]}
        )

    def failing_message(self):
        return row(self.kind, "c:2", {"update_id": 10**9, "group": "user", "ids": [1]})

    def effects(self) -> int:
        return OutboxMessage.objects.filter(kind="comms_email").count()


class TestCommsStatusExportChannel(OutboxChannelContract):
    kind = "comms_status_export"

    @pytest.fixture(autouse=True)
    def _site(self, published, settings, tmp_path):
        self.settings, self.tmp_path = settings, tmp_path
        settings.STATUS_SITE_DIR = tmp_path / "site"

    def message(self):
        return row(self.kind, "c:1", {"update_id": 1})

    def failing_message(self):
        blocker = self.tmp_path / "not-a-directory"
        blocker.write_text("x")
        self.settings.STATUS_SITE_DIR = blocker
        return row(self.kind, "c:2", {"update_id": 1})

    def effects(self) -> int:
        return int((self.settings.STATUS_SITE_DIR / "index.html").exists())
