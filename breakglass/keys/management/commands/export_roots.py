from django.core.management.base import BaseCommand, CommandError

from breakglass.keys import selectors
from breakglass.keys.management.commands._common import json_write


class Command(BaseCommand):
    help = "Write the root public keys and threshold (the file verifiers pin) to --out."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True)

    def handle(self, *args, out, **options):
        try:
            roots = selectors.roots_export()
        except selectors.KeysNotReady as exc:
            raise CommandError(str(exc)) from None
        json_write(out, roots)
        self.stdout.write(
            f"wrote {out}: {len(roots['keys'])} root keys, threshold {roots['threshold']}"
        )
