from django.core.management.base import BaseCommand, CommandError

from breakglass.audit.selectors import audit_chain_verify
from breakglass.lib.hashchain import parse_checkpoint


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain. Exits 0 when intact, 1 naming the first broken "
        "event. --checkpoint SEQ:HASH (a head recorded earlier) also catches a cut-off tail."
    )

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", help="SEQ:HASH of a head recorded earlier")

    def handle(self, *args, checkpoint=None, **options):
        try:
            expected = parse_checkpoint(checkpoint) if checkpoint else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        status = audit_chain_verify(checkpoint=expected)
        if not status.intact:
            self.stderr.write(str(status))
            raise SystemExit(1)
        self.stdout.write(str(status))
