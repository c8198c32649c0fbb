from django.core.management.base import BaseCommand, CommandError

from breakglass.audit.selectors import (
    audit_chain_verify,
    audit_checkpoint_path,
    audit_checkpoints_all,
    audit_head_present,
)
from breakglass.core.hashchain import parse_checkpoint


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain. Exits 0 when intact, 1 naming the first broken "
        "event. Also checks every head recorded in the checkpoint file, any --checkpoint "
        "SEQ:HASH, and the audit head signed into each --witness trust bundle, which "
        "catches events cut off the end or out of the middle."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            help="SEQ:HASH of a head recorded earlier (repeatable)",
        )
        parser.add_argument(
            "--witness",
            action="append",
            default=[],
            metavar="BUNDLE",
            help="a trust bundle copied from any host (repeatable): the chain must still "
            "contain the audit head it was signed with",
        )
        parser.add_argument(
            "--roots",
            help="roots file to check witness signatures against (default: the roots this "
            "server publishes; a host's pinned copy does not depend on this database)",
        )
        parser.add_argument(
            "--no-checkpoint-file",
            action="store_true",
            help="ignore BREAKGLASS_AUDIT_CHECKPOINT_FILE (check the chain alone)",
        )

    def handle(
        self, *args, checkpoint=(), witness=(), roots=None, no_checkpoint_file=False, **options
    ):
        if isinstance(checkpoint, str):  # call_command(checkpoint="SEQ:HASH")
            checkpoint = [checkpoint]
        if isinstance(witness, str):
            witness = [witness]
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
        witnesses = self._witness_heads(witness or (), roots)
        for name, version, head in witnesses:
            if not audit_head_present(head=head):
                self.stderr.write(
                    f"audit chain BROKEN: witness {name} (bundle version {version}) was signed "
                    f"at audit head #{head[0]} {head[1]}, which the chain no longer contains "
                    "(history rewritten after that bundle was published)"
                )
                raise SystemExit(1)
            self.stdout.write(f"witness {name}: bundle version {version}, head #{head[0]} present")
        status = audit_chain_verify(checkpoints=[*expected, *(h for _, _, h in witnesses)])
        if not status.intact:
            self.stderr.write(str(status))
            raise SystemExit(1)
        self.stdout.write(str(status))

    def _witness_heads(self, files, roots_file) -> list[tuple[str, int, tuple[int, str]]]:
        """(file, bundle version, audit head) for each witness; a bundle whose root
        signatures do not verify is refused, one without a head is skipped with a note."""
        if not files:
            return []
        from breakglass.core import VerificationError, verify_bundle
        from breakglass.keys.management.commands._common import json_read
        from breakglass.keys.selectors import KeysNotReady, roots_export

        if roots_file:
            roots = json_read(roots_file)
        else:
            try:
                roots = roots_export()
            except KeysNotReady as exc:
                raise CommandError(f"cannot check witness signatures: {exc}") from None
        heads = []
        for name in files:
            document = json_read(name)
            issued_at = (document.get("payload") or {}).get("issued_at")
            try:
                # Everything a host's verifier checks, as of the moment it was signed:
                # a witness is an old bundle, so it has long expired by now.
                verified = verify_bundle(
                    document, roots, now=issued_at if isinstance(issued_at, int) else None
                )
            except VerificationError as exc:
                raise CommandError(f"witness {name} refused: {exc}") from None
            if verified.audit_head is None:
                self.stdout.write(
                    f"witness {name}: bundle version {verified.version} carries no "
                    "audit head (signed before this release); skipped"
                )
                continue
            heads.append((name, verified.version, verified.audit_head))
        return heads
