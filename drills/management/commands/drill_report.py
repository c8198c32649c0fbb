"""Write the drill report for the last N days as HTML, JSON or CSV."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from drills.reports import report_build, report_csv, report_html


class Command(BaseCommand):
    help = "Drill report: coverage, staleness, time to access, people, resilience score."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, help="window length (default 7)")
        parser.add_argument("--format", choices=["html", "json", "csv"], default="html")
        parser.add_argument("--out", help="file to write (default: standard output)")

    def handle(self, *args, **options):
        if options["days"] < 1:
            raise CommandError("--days must be at least 1")
        report = report_build(days=options["days"])
        if options["format"] == "json":
            text = json.dumps(report, indent=2, sort_keys=True) + "\n"
        elif options["format"] == "csv":
            text = report_csv(report)
        else:
            text = report_html(report)
        if options["out"]:
            out = Path(options["out"])
            try:
                out.write_text(text)
            except OSError as exc:
                raise CommandError(f"Cannot write {out}: {exc.strerror}") from None
            self.stdout.write(
                f"Wrote {options['format']} report for the last {options['days']} days to {out}"
            )
        else:
            self.stdout.write(text, ending="")
