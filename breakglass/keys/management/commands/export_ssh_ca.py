from django.core.management.base import BaseCommand, CommandError

from breakglass.access.models import BackupPath
from breakglass.access.selectors import unknown_path_message
from breakglass.core.files import file_write_atomic
from breakglass.keys import selectors


class Command(BaseCommand):
    help = (
        "Write an SSH path's TrustedUserCAKeys file to --out: its CA line and those of the "
        "sealed kits covering it (what breakglass sync installs)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--path", required=True, help="the SSH path's slug")
        parser.add_argument("--out", required=True)

    def handle(self, *args, path, out, **options):
        ca = selectors.ssh_ca_of_path(path_slug=path)
        if ca is None:
            known = BackupPath.objects.filter(ssh_ca__isnull=False).values_list("slug", flat=True)
            raise CommandError(unknown_path_message(path, known, what="SSH path"))
        if ca.state not in (ca.State.ACTIVE, ca.State.RETIRING):
            raise CommandError(f"the CA of {path} is {ca.state}: give the path a new CA first")
        try:
            version, body = selectors.ssh_ca_published(path_slug=path)
        except selectors.SshTrustUnavailable as exc:
            raise CommandError(str(exc)) from None
        try:
            file_write_atomic(out, body, mode=0o644)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror}") from None
        self.stdout.write(
            f"wrote {out}: the CAs {path} trusts (its own, {ca.kid}, and any sealed kit's), "
            f"from bundle version {version}"
        )
