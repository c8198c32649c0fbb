"""Outbox kind "drill_sink": where notify-on-use messages for drill grants go instead of
real people's inboxes. Delivery is recorded so the drill's notify step can prove the
notification path fires."""

from django.conf import settings
from django.db import IntegrityError, transaction

from breakglass.outbox.handlers import PermanentFailure, register
from drills.models import DrillSinkDelivery


@register("drill_sink")
def deliver_to_drill_sink(message) -> None:
    if not settings.DRILLS_SINK_ENABLED:
        raise PermanentFailure("the drill sink is switched off (DRILLS_SINK_ENABLED=False)")
    try:
        with transaction.atomic():
            DrillSinkDelivery.objects.create(
                message_id=message.pk, source=message.source, payload=message.payload
            )
    except IntegrityError:
        pass  # delivered twice (a retried claim): once is what counts
