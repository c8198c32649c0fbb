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


class RateLimitCounter(models.Model):
    """Requests counted in one fixed window for one rate-limit bucket (accounts.ratelimit).

    In the database for the same reasons as LoginThrottle: the deployment's cache is
    per-process locmem (or the database anyway), and a per-process count would multiply
    the budget by the number of web workers. The bucket is a hash: no addresses stored.
    """

    bucket = models.CharField(max_length=64, unique=True)
    window = models.BigIntegerField()  # epoch seconds // window length
    hits = models.PositiveIntegerField(default=0)
    expires_at = models.BigIntegerField(db_index=True)  # epoch seconds

    def __str__(self) -> str:
        return f"{self.bucket[:12]}: {self.hits}"
