from django.core.management.base import BaseCommand, CommandError

from breakglass.keys.kits import KitRefused, kit_register
from breakglass.keys.management.commands._common import json_read
from breakglass.keys.selectors import KeysNotReady


class Command(BaseCommand):
    help = (
        "Register a kit made offline with `breakglass kit create` (its public part only); "
        "the next bundle carries it."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="kit.json from breakglass kit create (signed or not)")

    def handle(self, *args, file, **options):
        document = json_read(file)
        check_keys = document.get("check_keys")
        try:
            kit = kit_register(
                document={k: document.get(k) for k in ("payload", "signatures")},
                check_keys=check_keys if isinstance(check_keys, list) else None,
            )
        except (KitRefused, KeysNotReady) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"registered kit {kit.kit_id} ({kit.threshold}-of-{kit.custodians.count()}), "
            f"valid until {kit.not_after:%Y-%m-%d}; the next bundle carries it"
        )
