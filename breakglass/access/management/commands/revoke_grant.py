from django.core.management.base import BaseCommand, CommandError

from breakglass.access.errors import GrantError
from breakglass.access.lifecycle import grant_revoke
from breakglass.access.selectors import grant_get_by_jti


class Command(BaseCommand):
    help = "Revoke a grant by its token id (jti); the next trust bundle lists it as revoked."

    def add_arguments(self, parser):
        parser.add_argument("--jti", required=True)
        parser.add_argument("--reason", required=True)

    def handle(self, *args, **options):
        grant = grant_get_by_jti(jti=options["jti"].strip())
        if grant is None:
            raise CommandError(f"No grant has jti {options['jti']!r}.")
        try:
            grant_revoke(grant=grant, actor=None, reason=options["reason"])
        except GrantError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Revoked grant {grant.pk} ({grant.jti}).")
