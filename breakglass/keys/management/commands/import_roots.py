from django.core.management.base import BaseCommand, CommandError

from breakglass.keys import services
from breakglass.keys.management.commands._common import json_read


class Command(BaseCommand):
    help = "Hardened mode: pin root public keys generated offline (roots.json)."

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        document = json_read(file)
        try:
            keys = services.roots_import(document=document)
        except ValueError as exc:
            raise CommandError(f"refused: {exc}") from None
        self.stdout.write(
            f"pinned {len(keys)} offline root keys; bundles are now signed offline "
            "(bundle_prepare, then bundle_import)"
        )
