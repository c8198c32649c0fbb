from django.core.management.base import BaseCommand

from breakglass.access.selectors import paths_with_chains, ssh_paths_sharing_a_ca


class Command(BaseCommand):
    help = (
        "Check every backup path for circular dependencies: a path that needs the service "
        "it protects, or something that depends on it, and for SSH paths whose hosts would "
        "accept each other's certificates. Exits 1 when any path is flawed."
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
        summary = f"{len(results)} paths checked, {len(flawed)} flawed."
        if shared:
            summary += f" {len(shared)} pair(s) of SSH paths share a CA."
        if flawed or shared:
            self.stderr.write(summary)
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
