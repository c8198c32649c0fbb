from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from breakglass.access.kits import kit_journal_import
from breakglass.keys.kits import KitRefused
from breakglass.keys.selectors import KeysNotReady


class Command(BaseCommand):
    help = (
        "Record the mints of a kit journal (breakglass kit mint --journal) as kit grants "
        "awaiting review. Safe to run again: each mint is recorded once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--journal", required=True)

    def handle(self, *args, journal, **options):
        try:
            data = Path(journal).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {journal}: {exc.strerror}") from None
        try:
            result = kit_journal_import(data=data)
        except (KitRefused, KeysNotReady) as exc:
            raise CommandError(str(exc)) from None
        for grant in result.imported:
            self.stdout.write(
                f"recorded grant {grant.pk}: {grant.jti} on {grant.path.slug}, review pending"
            )
        self.stdout.write(
            f"kit {result.kit.kit_id}: {len(result.imported)} new, {result.already} already "
            "recorded"
            + ("; the kit needs new shares (re-key)" if result.kit.rekey_needed_at else "")
        )
