from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections
from prometheus_client import make_wsgi_app

from breakglass.project.metrics import metrics_registry
from breakglass.project.transient import database_problem


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass  # one line per scrape every 15 s is noise, not information


class Command(BaseCommand):
    help = (
        "Serve /metrics (Prometheus text format, no token) on ADDRESS:PORT, for a monitoring "
        "network that alone can reach that address. The console's /metrics needs "
        "BREAKGLASS_METRICS_TOKEN instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", required=True, metavar="ADDRESS:PORT")

    def handle(self, *args, bind: str, **options):
        host, sep, port = bind.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise CommandError(f"--bind: expected ADDRESS:PORT, got {bind!r}")
        host = host.strip("[]")
        metrics_app = make_wsgi_app(metrics_registry())

        def app(environ, start_response):
            # A long-running process outside Django's request cycle: drop a connection
            # the database restart broke (CONN_HEALTH_CHECKS re-checks it), so scrapes
            # recover on their own instead of failing until this process restarts.
            close_old_connections()
            try:
                return metrics_app(environ, start_response)
            except DatabaseError as exc:
                self.stderr.write(f"serve_metrics: {database_problem(exc)}")
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"the database is unreachable\n"]
            finally:
                close_old_connections()

        try:
            server = make_server(host, int(port), app, handler_class=_QuietHandler)
        except OSError as exc:
            raise CommandError(f"cannot listen on {bind}: {exc.strerror or exc}") from exc
        self.stdout.write(f"Serving Breakglass metrics on http://{bind}/metrics", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
