import sys

from django.core.management.base import BaseCommand, CommandError

from breakglass.audit.selectors import audit_export_lines
from breakglass.core.files import file_write_atomic


class Command(BaseCommand):
    help = (
        "Write the audit log as JSON lines (seq, prev_hash, hash, record per line). "
        "Re-check it anywhere with `python -m breakglass.core.hashchain FILE`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="output file, or - for stdout")

    def handle(self, *args, out, **options):
        count = 0
        try:
            # Written atomically, so a failed export never leaves a truncated file that
            # would later verify as a (shorter) intact chain.
            if out == "-":
                for line in audit_export_lines():
                    sys.stdout.buffer.write(line)
                    count += 1
                sys.stdout.buffer.flush()
            else:

                def counted():
                    nonlocal count
                    for line in audit_export_lines():
                        count += 1
                        yield line

                # Owner-only: the log names people and what they did.
                file_write_atomic(out, counted(), mode=0o600)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc}") from None
        if out != "-":
            self.stdout.write(f"exported {count} audit events to {out}")
