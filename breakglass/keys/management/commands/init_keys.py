from django.core.management.base import BaseCommand, CommandError

from breakglass.keys import selectors, services


class Command(BaseCommand):
    help = "Create root keys, an issuer key and the first trust bundle (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--roots", type=int, default=3, help="number of root keys (3)")

    def handle(self, *args, roots, **options):
        try:
            services.keys_bootstrap(root_count=roots)
        except (ValueError, services.SecretError) as exc:
            raise CommandError(str(exc)) from None
        bundle = selectors.bundle_latest()
        issuer = selectors.issuer_key_signing()
        self.stdout.write(f"issuer key: {issuer.kid if issuer else '(none)'}")
        self.stdout.write(
            f"trust bundle: version {bundle.version}" if bundle else "trust bundle: not published"
        )
        self.stdout.write(f"published to {selectors.published_bundle_path()}")
