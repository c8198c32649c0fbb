"""Run an automated drill now, in this process, and print each step. Exit 0 only if every
drilled path passed."""

from django.core.management.base import BaseCommand, CommandError

from breakglass.access.models import BackupPath
from breakglass.access.selectors import unknown_path_message
from drills.engine import drill_run_create, drill_run_execute
from drills.errors import DrillBlocked
from drills.models import DrillRun


class Command(BaseCommand):
    help = "Run an automated drill of one backup path (--path SLUG) or of all (--all)."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--path", help="slug of the backup path to drill")
        target.add_argument("--all", action="store_true", help="drill every active path")

    def handle(self, *args, **options):
        if options["all"]:
            paths = list(BackupPath.objects.filter(is_active=True).select_related("service"))
            if not paths:
                raise CommandError("There are no active backup paths to drill.")
        else:
            path = BackupPath.objects.filter(slug=options["path"]).select_related("service")
            if not path.exists():
                known = BackupPath.objects.values_list("slug", flat=True)
                raise CommandError(unknown_path_message(options["path"], known))
            paths = list(path)
        failed = 0
        for path in paths:
            try:
                run = drill_run_create(path=path, trigger=DrillRun.Trigger.COMMAND, enqueue=False)
            except DrillBlocked as exc:
                raise CommandError(f"Drills are blocked: {exc}") from None
            self.stdout.write(f"Drill of {path} (run {run.pk})")
            run = drill_run_execute(run_id=run.pk, sync=True, on_step=self._print_step)
            if run.state == DrillRun.State.PASSED:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"  PASSED {path}: time to access {run.time_to_access_ms} ms"
                    )
                )
            else:
                failed += 1
                self.stdout.write(
                    self.style.ERROR(f"  {run.state.upper()} {path}: {run.failure_reason}")
                )
        self.stdout.write(f"{len(paths) - failed}/{len(paths)} paths passed.")
        if failed:
            raise SystemExit(1)

    def _print_step(self, step):
        mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}.get(step.state, step.state)
        duration = f" ({step.duration_ms} ms)" if step.duration_ms is not None else ""
        line = f"  [{mark}] {step.order}. {step.title}{duration}"
        if step.reason:
            line += f"\n         {step.reason}"
        style = self.style.ERROR if step.state == "failed" else (lambda s: s)
        self.stdout.write(style(line))
