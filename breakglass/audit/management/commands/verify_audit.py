from django.core.management.base import BaseCommand, CommandError

from breakglass.audit.selectors import (
    audit_chain_verify,
    audit_checkpoint_latest,
    audit_checkpoint_path,
)
from breakglass.core.hashchain import parse_checkpoint


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain. Exits 0 when intact, 1 naming the first broken "
        "event. Also checks the last head recorded in the checkpoint file (or --checkpoint "
        "SEQ:HASH), which catches events cut off the end."
    )

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", help="SEQ:HASH of a head recorded earlier")
        parser.add_argument(
            "--no-checkpoint-file",
            action="store_true",
            help="ignore BREAKGLASS_AUDIT_CHECKPOINT_FILE (check the chain alone)",
        )

    def handle(self, *args, checkpoint=None, no_checkpoint_file=False, **options):
        try:
            expected = parse_checkpoint(checkpoint) if checkpoint else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if expected is None and not no_checkpoint_file:
            expected = audit_checkpoint_latest()
            if expected is not None:
                self.stdout.write(
                    f"checking against checkpoint #{expected[0]} from {audit_checkpoint_path()}"
                )
        status = audit_chain_verify(checkpoint=expected)
        if not status.intact:
            self.stderr.write(str(status))
            raise SystemExit(1)
        self.stdout.write(str(status))
