from django.core.management.base import BaseCommand

from breakglass.core.cli import main as breakglass_main
from breakglass.keys.selectors import published_bundle_path, published_roots_path


class Command(BaseCommand):
    help = (
        "Run a drill probe target for one service: `breakglass serve --allow-drill` on the "
        "published bundle and roots (scripts/run starts one for the demo; on real hosts run "
        "`breakglass serve` from the single-file verifier, docs/integrations/nginx.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--audience", required=True, help="the service's slug")
        parser.add_argument("--listen", default="127.0.0.1:8001", help="HOST:PORT")

    def handle(self, *args, **options):
        code = breakglass_main(
            [
                "serve",
                "--bundle", str(published_bundle_path()),
                "--roots", str(published_roots_path()),
                "--audience", options["audience"],
                "--allow-drill",
                "--listen", options["listen"],
            ]
        )  # fmt: skip
        if code:
            raise SystemExit(code)
