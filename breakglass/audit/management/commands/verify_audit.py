from django.core.management.base import BaseCommand, CommandError

from breakglass.audit.selectors import (
    audit_chain_verify,
    audit_checkpoint_path,
    audit_checkpoints_all,
)
from breakglass.core.hashchain import parse_checkpoint


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain. Exits 0 when intact, 1 naming the first broken "
        "event. Also checks every head recorded in the checkpoint file (and any "
        "--checkpoint SEQ:HASH), which catches events cut off the end or out of the middle."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            help="SEQ:HASH of a head recorded earlier (repeatable)",
        )
        parser.add_argument(
            "--no-checkpoint-file",
            action="store_true",
            help="ignore BREAKGLASS_AUDIT_CHECKPOINT_FILE (check the chain alone)",
        )

    def handle(self, *args, checkpoint=(), no_checkpoint_file=False, **options):
        if isinstance(checkpoint, str):  # call_command(checkpoint="SEQ:HASH")
            checkpoint = [checkpoint]
        try:
            expected = [parse_checkpoint(text) for text in checkpoint or ()]
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not no_checkpoint_file:
            recorded = audit_checkpoints_all()
            if recorded:
                self.stdout.write(
                    f"checking against checkpoint #{max(recorded)[0]} and every earlier one "
                    f"({len(recorded)} in all) from {audit_checkpoint_path()}"
                )
            expected += recorded
        status = audit_chain_verify(checkpoints=expected)
        if not status.intact:
            self.stderr.write(str(status))
            raise SystemExit(1)
        self.stdout.write(str(status))
