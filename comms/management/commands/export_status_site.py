from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from comms.export import status_site_export


class Command(BaseCommand):
    help = "Write a self-contained static copy of the public status page (HTML, JSON, Atom)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--out", default=None, help=f"Directory to write (default {settings.STATUS_SITE_DIR})"
        )

    def handle(self, *args, out=None, **options):
        target = Path(out) if out else Path(settings.STATUS_SITE_DIR)
        if target.exists() and not target.is_dir():
            raise CommandError(f"{target} exists and is not a directory")
        try:
            written = status_site_export(out_dir=target)
        except OSError as exc:
            raise CommandError(f"could not write {target}: {exc}") from exc
        self.stdout.write(f"Wrote {len(written)} files to {target}; open {target / 'index.html'}")
