"""Contract test mixins for plug-ins, as django-otp's `test_utils.py` does for devices:
every outbox delivery channel and every drill step passes the same tests.

A channel's test class sets `kind` and implements `message()` (a pending row that should
deliver), `failing_message()` (one that cannot, for a reason the channel owns) and
`effects()` (how many deliveries the outside world has seen). A step's test class sets
`step` and implements `context()` (a context in which it passes) and `failing_context()`
(one in which it fails). Fixtures named in the method signatures are pytest's.
"""

from __future__ import annotations

import json

from breakglass.outbox.handlers import handler_for
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_deliver_one


class OutboxChannelContract:
    kind: str

    def message(self) -> OutboxMessage:
        raise NotImplementedError

    def failing_message(self) -> OutboxMessage:
        raise NotImplementedError

    def effects(self) -> int:
        raise NotImplementedError

    def test_the_channel_is_registered_under_its_kind(self):
        assert callable(handler_for(self.kind))

    def test_a_message_is_delivered_once_with_its_effect(self):
        message = self.message()
        assert message.kind == self.kind
        before = self.effects()
        assert outbox_deliver_one(message_id=message.pk) == OutboxMessage.State.DELIVERED
        assert self.effects() == before + 1
        # Delivered rows are never claimed again: a re-sent task does nothing.
        assert outbox_deliver_one(message_id=message.pk) == "skipped"
        assert self.effects() == before + 1
        row = OutboxMessage.objects.get(pk=message.pk)
        assert (row.state, row.last_error, row.delivered_at is not None) == ("delivered", "", True)

    def test_a_failed_delivery_is_kept_with_a_one_line_reason(self):
        message = self.failing_message()
        state = outbox_deliver_one(message_id=message.pk)
        row = OutboxMessage.objects.get(pk=message.pk)
        assert state == row.state
        assert row.state in (OutboxMessage.State.PENDING, OutboxMessage.State.DEAD)
        assert row.last_error and "\n" not in row.last_error.strip()
        assert "Traceback" not in row.last_error
        assert row.delivered_at is None


class DrillStepContract:
    step: str

    def context(self):
        raise NotImplementedError

    def failing_context(self):
        raise NotImplementedError

    @staticmethod
    def _shape(result) -> tuple[bool, dict, str]:
        ok, evidence, reason = result
        assert type(ok) is bool
        assert isinstance(evidence, dict) and isinstance(reason, str)
        json.dumps(evidence)  # stored on the step row as JSON
        return ok, evidence, reason

    def _run(self, ctx):
        from drills.steps import step_run

        return self._shape(step_run(self.step, ctx))

    def test_the_step_is_one_of_the_seven(self):
        from drills.models import STEP_NAMES
        from drills.steps import STEPS

        assert self.step in STEPS and self.step in STEP_NAMES

    def test_a_passing_step_gives_evidence_and_no_reason(self):
        ctx = self.context()
        ok, evidence, reason = self._run(ctx)
        assert (ok, reason) == (True, ""), reason
        assert evidence
        if ctx.credential:
            assert ctx.credential not in json.dumps(evidence)  # never a secret

    def test_a_failing_step_says_why_in_a_sentence(self):
        ok, evidence, reason = self._run(self.failing_context())
        assert ok is False
        assert reason.strip() and reason.rstrip().endswith((".", ")"))
        assert "Traceback" not in reason
