from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from breakglass.access.errors import GrantError
from breakglass.access.grants import grant_request, grant_self_issue, path_resolve


class Command(BaseCommand):
    help = (
        "Request access on a path for a user (prints the pending request's ID), or with "
        "--emergency break the glass (prints the token or SSH certificate on stdout)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--path", required=True, help="backup path slug")
        parser.add_argument("--user", required=True, help="the responder's username")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--incident", default="", help="incident reference, e.g. INC-2026-0042")
        parser.add_argument("--emergency", action="store_true", help="self-issue at once")
        parser.add_argument(
            "--minutes", type=int, default=None, help="lifetime (default: the maximum)"
        )
        parser.add_argument("--scope", action="append", dest="scopes", help="repeatable")
        parser.add_argument(
            "--ssh-public-key", type=Path, default=None, help="file with your .pub key"
        )

    def handle(self, *args, **options):
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"Unknown user {options['user']!r}.")
        ssh_public_key = ""
        if options["ssh_public_key"] is not None:
            try:
                ssh_public_key = options["ssh_public_key"].read_text()
            except OSError as exc:
                raise CommandError(f"Cannot read the SSH public key: {exc}") from exc
        try:
            path = path_resolve(slug=options["path"])
            fields = dict(
                path=path,
                requester=user,
                reason=options["reason"],
                scopes=options["scopes"],
                lifetime_minutes=options["minutes"],
                incident_ref=options["incident"],
                ssh_public_key=ssh_public_key,
            )
            if options["emergency"]:
                # On the command line the shell account stands in for the fresh OTP, and
                # the confirmation is the explicit --emergency flag with the path slug.
                grant, credential = grant_self_issue(confirmation=path.slug, **fields)
                self.stderr.write(
                    f"Emergency grant {grant.pk} issued, expires {grant.expires_at:%Y-%m-%d %H:%M:%S %Z}. "
                    "Approvers and security contacts are being notified; a post-use review is required."
                )
                self.stdout.write(credential)
            else:
                grant = grant_request(**fields)
                self.stderr.write(
                    f"Request {grant.pk} is waiting for {path.approvals_required} "
                    f"approval{pluralize(path.approvals_required)} "
                    f"from '{path.approver_group.name}'."
                )
                self.stdout.write(str(grant.pk))
        except GrantError as exc:
            raise CommandError(str(exc)) from exc
