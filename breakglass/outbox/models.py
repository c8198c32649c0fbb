from django.db import models


class OutboxMessage(models.Model):
    """A side effect (an e-mail, a webhook call, a notification) to perform after commit.

    Written in the same transaction as the action that causes it, so the action and its
    side effect either both exist or neither does. One row per recipient; the
    idempotency key makes a second enqueue of the same delivery a no-op.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        DEAD = "dead"  # gave up after max_attempts; visible in the console, can be retried

    kind = models.CharField(max_length=50, db_index=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    recipient = models.CharField(max_length=500, blank=True)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=8)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Optional link to what caused it, for per-object delivery reports ("comms.statusupdate:42").
    source = models.CharField(max_length=100, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient or '-'} ({self.state})"
