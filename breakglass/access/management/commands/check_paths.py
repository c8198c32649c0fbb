from django.core.management.base import BaseCommand

from breakglass.access.selectors import paths_with_chains


class Command(BaseCommand):
    help = (
        "Check every backup path for circular dependencies: a path that needs the service "
        "it protects, or something that depends on it. Exits 1 when any path is flawed."
    )

    def handle(self, *args, **options):
        results = paths_with_chains()
        flawed = [(path, chain) for path, chain in results if chain is not None]
        for path, chain in flawed:
            self.stdout.write(
                f"FLAWED {path.slug} (into {path.service.slug}): {' -> '.join(chain)}"
            )
        summary = f"{len(results)} paths checked, {len(flawed)} flawed."
        if flawed:
            self.stderr.write(summary)
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
