from django.core.management.base import BaseCommand

from breakglass.keys import services
from breakglass.keys.management.commands._common import json_write


class Command(BaseCommand):
    help = "Hardened mode: write the next bundle's unsigned payload for offline signing."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True)

    def handle(self, *args, out, **options):
        payload = services.bundle_payload_build()
        json_write(out, {"payload": payload, "signatures": []})
        self.stdout.write(
            f"wrote {out}: version {payload['version']}, {len(payload['keys'])} issuer keys, "
            f"{len(payload['revoked_jti'])} revoked tokens. Each root holder runs:\n"
            f"  python -m breakglass.core.signing sign --key ROOT.pem {out}\n"
            f"then: manage.py bundle_import {out}"
        )
