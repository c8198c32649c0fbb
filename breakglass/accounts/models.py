from django.db import models


class LoginThrottle(models.Model):
    """Failed password logins for one username, for exponential back-off.

    Kept in the database rather than the cache on purpose: the database is the one
    service login already depends on, it is shared by every web worker (a per-process
    cache would multiply an attacker's budget by the number of workers), and it survives
    restarts. Redis being down during an incident must not switch throttling off.
    Keyed by the username as typed (case-folded), whether or not such a user exists, so
    the response does not reveal which usernames are real.
    """

    username = models.CharField(max_length=150, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(db_index=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "login throttle"

    def __str__(self) -> str:
        return f"{self.username}: {self.failures} failed log-ins"
