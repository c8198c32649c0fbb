from django.core.management.base import BaseCommand, CommandError

from breakglass.keys import selectors, services


class Command(BaseCommand):
    help = "Make a new issuer key the signing key; older keys verify until their end date."

    def handle(self, *args, **options):
        try:
            key = services.issuer_key_rotate(actor=None)
        except (ValueError, services.SecretError, services.KeysNotReady) as exc:
            raise CommandError(str(exc)) from None
        bundle = selectors.bundle_latest()
        self.stdout.write(f"new issuer key {key.kid} is signing")
        if bundle is not None and any(
            k["kid"] == key.kid for k in bundle.document["payload"]["keys"]
        ):
            self.stdout.write(f"published in trust bundle version {bundle.version}")
        else:
            self.stdout.write("the bundle must be signed offline: run bundle_prepare")
