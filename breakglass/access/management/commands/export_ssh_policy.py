from django.core.management.base import BaseCommand, CommandError

from breakglass.access.selectors import ssh_path_policies
from breakglass.keys.management.commands._common import json_write


class Command(BaseCommand):
    help = (
        "Write SSH paths' certificate policy for `breakglass kit create --ssh-policy` on an "
        "air-gapped machine (kit_register refuses a kit whose policy differs from the paths')."
    )

    def add_arguments(self, parser):
        parser.add_argument("--path", action="append", required=True, help="repeatable")
        parser.add_argument("--out", required=True)

    def handle(self, *args, path, out, **options):
        policies = ssh_path_policies(slugs=path)
        unknown = [slug for slug in path if slug not in policies]
        if unknown:
            raise CommandError(f"not an active SSH path with a CA: {', '.join(unknown)}")
        json_write(out, {"ssh": [policies[slug] for slug in dict.fromkeys(path)]})
        self.stdout.write(f"wrote {out}: the certificate policy of {', '.join(policies)}")
