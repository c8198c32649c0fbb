from django.core.management.base import BaseCommand, CommandError

from breakglass.keys.kits import kit_export
from breakglass.keys.management.commands._common import json_write
from breakglass.keys.models import Kit
from breakglass.keys.selectors import KeysNotReady


class Command(BaseCommand):
    help = "Write a kit's public part (certified by the roots) for custodians' laptops."

    def add_arguments(self, parser):
        parser.add_argument("--kit", help="kit id (default: the newest active kit)")
        parser.add_argument("--out", required=True)

    def handle(self, *args, kit, out, **options):
        row = None
        if kit:
            row = Kit.objects.filter(kit_id=kit).first()
            if row is None:
                raise CommandError(f"no kit named {kit!r}")
        try:
            document = kit_export(kit=row)
        except KeysNotReady as exc:
            raise CommandError(str(exc)) from None
        json_write(out, document)
        payload = document["payload"]
        self.stdout.write(
            f"wrote {out}: kit {payload['kit']}, {payload['threshold']}-of-"
            f"{len(payload['custodians'])}, covers {', '.join(payload['audiences'])}"
            + "".join(f", SSH path {entry['path']}" for entry in payload.get("ssh", []))
        )
