"""Benchmark: breaking the glass through the console, against a bare Django view.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bg .venv/bin/python bench/break_glass.py

Measures, in one run and one process (Django test client, full middleware stack):
- a bare Django view (the baseline),
- an emergency self-issue POST (form, policy checks, Ed25519 signature, credential
  encrypted at rest, audit events, notify-on-use outbox rows, one transaction),
  with the Celery broker (a private Redis) up,
- the same with that Redis hung (SIGSTOP: it accepts connections and never answers),
  where each grant may wait for one publish attempt of BREAKGLASS_BROKER_PUBLISH_TIMEOUT_MS
  (issue 10: 20.6 s per grant before, one 5 s socket timeout per notification),
- the same with that Redis stopped: the fail-small path, where the grant must still be
  issued and its notifications wait in the outbox,
- a k=2 approved grant: request + two approvals through the services.
Prints requests/s and the ratio to the bare view. Uses its own test database
(`test_<name>`, created and dropped here) and never the demo's data.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=150, help="self-issues per phase")
    args = parser.parse_args()

    from devkit.redis_server import PrivateRedis

    redis = PrivateRedis()
    redis.start()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        BREAKGLASS_TEST_REAL_BROKER="1",
        CELERY_BROKER_URL=redis.url,
    )
    os.environ.setdefault("BREAKGLASS_DATA_DIR", "/tmp/breakglass-bench")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    from bench.common import bare_view_rate, django_setup, print_ratios

    django_setup()
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        figures = _run(args.grants, redis)
        figures = {"bare Django view": bare_view_rate(), **figures}
        print(f"\nbreak_glass benchmark ({connection.vendor}, {args.grants} grants per phase)")
        print_ratios(figures, baseline="bare Django view", unit="req/s")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        redis.stop()
    return 0


def _run(count: int, redis) -> dict[str, float]:
    from django.contrib.auth.models import Group

    from breakglass.access import grants
    from breakglass.access.models import BackupPath, CriticalService, Team
    from breakglass.accounts import roles
    from breakglass.keys.services import keys_bootstrap
    from breakglass.outbox.models import OutboxMessage
    from devkit.factories import user_make, verified_client

    keys_bootstrap()
    team = Team.objects.create(name="Network", slug="network")
    service = CriticalService.objects.create(name="DNS", slug="dns", tier=1, owning_team=team)
    responders, _ = Group.objects.get_or_create(name=roles.RESPONDER)
    approvers, _ = Group.objects.get_or_create(name=roles.APPROVER)
    path = BackupPath.objects.create(
        service=service,
        name="DNS zone editor",
        slug="dns-zone",
        scopes=["read", "write"],
        approvals_required=2,
        approver_group=approvers,
        responder_group=responders,
        allow_self_issue=True,
    )
    for i in range(3):
        user_make(f"approver{i}", role_names=(roles.APPROVER,))

    def self_issue_rate(tag: str, count: int = count) -> float:
        # One person per grant: a second self-issue by the same person is (rightly)
        # refused until the first one's review is closed.
        clients = [
            verified_client(user_make(f"{tag}{i}", role_names=(roles.RESPONDER,)))
            for i in range(count)
        ]
        url = f"/access/paths/{path.slug}/break-glass/"
        form = {"reason": "benchmark", "confirmation": path.slug, "lifetime_minutes": "30"}
        started = time.perf_counter()
        for client in clients:
            response = client.post(url, form)
            assert response.status_code == 302, (response.status_code, response.content[:300])
        return count / (time.perf_counter() - started)

    figures = {"break the glass (broker up)": self_issue_rate("up")}
    redis.freeze()
    try:
        hung_count = min(count, 40)
        hung = self_issue_rate("hung", hung_count)
    finally:
        redis.thaw()
    figures["break the glass (broker HUNG)"] = hung
    added = 1 / hung - 1 / figures["break the glass (broker up)"]
    print(f"a hung broker adds {added * 1000:.0f} ms per emergency grant (target < 500 ms)")
    redis.stop()
    before = OutboxMessage.objects.count()
    down = self_issue_rate("down")
    written = OutboxMessage.objects.count() - before
    pending = OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING).count()
    assert pending >= written > 0, (pending, written)
    figures["break the glass (broker DOWN)"] = down

    requester = user_make("requester", role_names=(roles.RESPONDER,))
    approver_a, approver_b = (user_make(f"k{i}", role_names=(roles.APPROVER,)) for i in (1, 2))
    started = time.perf_counter()
    for _ in range(count):
        grant = grants.grant_request(
            path=path, requester=requester, reason="benchmark", lifetime_minutes=30
        )
        grants.grant_approve(grant=grant, approver=approver_a)
        grants.grant_approve(grant=grant, approver=approver_b)
    figures["request + 2 approvals (services)"] = count / (time.perf_counter() - started)
    print(f"notifications written while the broker was down: {written}, all pending for the sweep")
    return figures


if __name__ == "__main__":
    sys.exit(main())
