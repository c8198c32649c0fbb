"""An automated drill probes a token path through the real nginx and `breakglass serve`.

The host's trust directory is the published one (as if `breakglass sync` ran after every
change), nginx runs the documented configuration, the probe sidecar (`--allow-drill`) and
the production sidecar run from the single-file verifier. The drill's token must pass the
probe location, be refused by production, and be refused by the probe once revoked; the
report shows the revocation propagation time.
"""

from __future__ import annotations

import shutil

import pytest

from breakglass.accounts import roles
from breakglass.keys.selectors import published_bundle_path
from devkit.factories import user_make
from drills.engine import drill_run_create, drill_run_execute
from drills.reports import report_build
from tests.breakglass.conftest import path_make, service_make
from tests.integrations.hosts import NginxSite, private_root_directory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token_path(settings, monkeypatch, django_capture_on_commit_callbacks):
    from django.db import transaction

    from breakglass.keys.services import keys_bootstrap

    # Services commit on return in production; run their on_commit work (publishing the
    # bundle the host reads) at once inside the test's transaction.
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())
    keys_bootstrap()
    for name in ("alex-approver", "bea-approver"):
        user_make(name, role_names=(roles.APPROVER,))
    service_make("dns")
    return path_make("sso-backup", service="sso", requires=("dns",))


@pytest.fixture
def host(verifier_command, token_path):
    root = private_root_directory("breakglass-drill-probe-")
    site = None
    try:
        site = NginxSite(
            root, verifier_command, conf=published_bundle_path().parent, audience="sso"
        )
        with site.nginx:
            yield site
    finally:
        if site is not None:
            site.close()
        shutil.rmtree(root, ignore_errors=True)


def test_a_drill_proves_the_real_target_and_measures_revocation_propagation(host, token_path):
    token_path.probe_url = f"http://127.0.0.1:{host.port}/breakglass-drill-probe"
    token_path.save(update_fields=["probe_url"])
    run = drill_run_execute(run_id=drill_run_create(path=token_path, enqueue=False).pk, sync=True)

    assert run.state == "passed", run.failure_reason
    steps = {s.name: s for s in run.steps.all()}
    assert steps["http_probe"].evidence["status"] == 200  # through nginx's probe location
    resealed = steps["http_reseal"].evidence
    assert (resealed["status"], resealed["error"]) == (401, "revoked")
    assert 0 <= resealed["propagation_ms"] < 60_000
    row = next(r for r in report_build(days=7)["paths"] if r["path"] == "sso-backup")
    assert row["propagation_last_ms"] == resealed["propagation_ms"]
    assert host.upstream.seen == []  # the probe location answers by itself
