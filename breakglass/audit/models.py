from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One append-only, hash-chained record of something that happened.

    `seq` is assigned under a lock as the previous event's seq + 1, so a gap means a
    deleted row (database sequences can skip numbers on rollback; `seq` cannot).
    """

    seq = models.BigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The actor's username at the time, kept even if the account is renamed; "system" for tasks.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label}"

    # The columns the hash covers, in the order `chain_record_of` takes them; reading
    # just these (`values_list(*CHAIN_COLUMNS)`) verifies without building instances.
    CHAIN_COLUMNS = (
        "seq",
        "created_at",
        "actor_id",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "data",
    )

    def chain_record(self) -> dict:
        """The fields covered by the hash, in a form canonical JSON can encode."""
        return self.chain_record_of(*(getattr(self, column) for column in self.CHAIN_COLUMNS))

    @staticmethod
    def chain_record_of(
        seq, created_at, actor_id, actor_label, action, object_type, object_id, data
    ) -> dict:
        return {
            "seq": seq,
            "created_at": created_at.isoformat(),
            "actor_id": actor_id,
            "actor": actor_label,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "data": data,
        }
