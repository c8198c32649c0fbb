from django.core.management.base import BaseCommand, CommandError

from breakglass.keys import services
from breakglass.keys.management.commands._common import json_read


class Command(BaseCommand):
    help = "Hardened mode: check an offline-signed bundle against the roots and publish it."

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        document = json_read(file)
        try:
            bundle = services.bundle_import(document=document)
        except (services.BundleImportError, services.KeysNotReady) as exc:
            raise CommandError(f"refused: {exc}") from None
        self.stdout.write(f"published trust bundle version {bundle.version}")
