from django.core.management.base import BaseCommand, CommandError

from breakglass.keys import selectors
from breakglass.keys.management.commands._common import json_write


class Command(BaseCommand):
    help = "Write the current signed trust bundle to --out."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True)

    def handle(self, *args, out, **options):
        bundle = selectors.bundle_latest()
        if bundle is None:
            raise CommandError("no trust bundle has been published yet: run init_keys")
        json_write(out, bundle.document)
        self.stdout.write(
            f"wrote {out}: version {bundle.version}, expires {bundle.expires_at:%Y-%m-%d %H:%M} UTC"
        )
