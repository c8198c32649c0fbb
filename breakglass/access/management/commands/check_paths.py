from django.conf import settings
from django.core.management.base import BaseCommand

from breakglass.access.selectors import (
    paths_weaker_siblings,
    paths_with_chains,
    ssh_paths_sharing_a_ca,
)


class Command(BaseCommand):
    help = (
        "Check every backup path for circular dependencies (a path that needs the service "
        "it protects, or something that depends on it), for SSH paths whose hosts would "
        "accept each other's certificates, and for weaker siblings (another path reaching "
        "the same service and scope with fewer approvals or by self-issue). Exits 1 when "
        "any path is flawed or shares a CA, or has a weaker sibling and "
        "BREAKGLASS_WEAKER_SIBLING=error."
    )

    def handle(self, *args, **options):
        results = paths_with_chains()
        flawed = [(path, chain) for path, chain in results if chain is not None]
        for path, chain in flawed:
            self.stdout.write(
                f"FLAWED {path.slug} (into {path.service.slug}): {' -> '.join(chain)}"
            )
        shared = ssh_paths_sharing_a_ca()
        for first, second in shared:
            self.stdout.write(
                f"SHARED CA {first.slug} and {second.slug}: hosts of either accept "
                "certificates from both; give each path its own SSH CA"
            )
        siblings = paths_weaker_siblings()
        level = "WEAKER" if settings.BREAKGLASS_WEAKER_SIBLING == "error" else "WARNING"
        for finding in siblings:
            self.stdout.write(f"{level} {finding}")
        summary = (
            f"{len(results)} paths checked, {len(flawed)} flawed, "
            f"{len(siblings)} weaker sibling{'s' if len(siblings) != 1 else ''}."
        )
        if shared:
            pairs = "1 pair" if len(shared) == 1 else f"{len(shared)} pairs"
            summary += f" {pairs} of SSH paths share a CA."
        if flawed or shared or (siblings and settings.BREAKGLASS_WEAKER_SIBLING == "error"):
            self.stderr.write(summary)
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
