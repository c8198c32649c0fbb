from django.core.management.base import BaseCommand, CommandError

from breakglass.core.files import file_write_atomic
from breakglass.keys import selectors


class Command(BaseCommand):
    help = (
        "Write an SSH path's key revocation list (for sshd's RevokedKeys) to --out, "
        "as of the latest trust bundle."
    )

    def add_arguments(self, parser):
        parser.add_argument("--path", required=True, help="the SSH path's slug")
        parser.add_argument("--out", required=True)

    def handle(self, *args, path, out, **options):
        try:
            version, krl = selectors.ssh_krl_published(path_slug=path)
        except selectors.SshTrustUnavailable as exc:
            raise CommandError(str(exc)) from None
        try:
            file_write_atomic(out, krl, mode=0o644)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror}") from None
        self.stdout.write(f"wrote {out}: the KRL of {path} as of trust bundle version {version}")
