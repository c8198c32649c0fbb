from django.core.management.base import BaseCommand, CommandError

from breakglass.keys import selectors, services


class Command(BaseCommand):
    help = (
        "Change the deployment's issuer (the `iss` of tokens, the `issuer` of the bundle). "
        "Every token issued before stops verifying once hosts fetch the new bundle."
    )

    def add_arguments(self, parser):
        parser.add_argument("--issuer", required=True, help="the new issuer URL")
        parser.add_argument(
            "--confirm", action="store_true", help="yes: tokens already issued stop verifying"
        )

    def handle(self, *args, issuer, confirm, **options):
        current = selectors.issuer_current()
        if not confirm:
            raise CommandError(
                f"the issuer is {current!r}; changing it to {issuer!r} makes every token "
                "already issued stop verifying once hosts fetch the new bundle: "
                "run again with --confirm"
            )
        try:
            bundle = services.issuer_set(url=issuer, actor=None)
        except (ValueError, services.SecretError, services.KeysNotReady) as exc:
            raise CommandError(str(exc)) from None
        now = selectors.issuer_current()
        if now == current:
            self.stdout.write(f"the issuer is already {now!r}; nothing changed")
            return
        self.stdout.write(f"issuer changed from {current!r} to {now!r}")
        if bundle is not None:
            self.stdout.write(f"published in trust bundle version {bundle.version}")
        else:
            self.stdout.write("the bundle must be signed offline: run bundle_prepare")
        self.stdout.write("tokens issued before this change no longer verify on synced hosts")
