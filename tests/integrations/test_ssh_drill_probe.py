"""The automated drill of an SSH path with a probe host logs in to the real sshd with its
drill certificate, revokes it, and measures how long until that sshd refuses it: the
revocation propagation time the drill report shows. The host's sync timer is a thread
running the single-file verifier's `breakglass sync` every half second."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from breakglass.keys import services
from breakglass.keys.selectors import roots_export
from devkit.factories import user_make
from drills.engine import drill_run_create, drill_run_execute
from drills.models import DrillStep
from drills.reports import report_build
from tests.breakglass.conftest import path_make
from tests.integrations.hosts import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class HostTimer:
    """What the host's systemd timer does, faster: `breakglass sync` on a loop."""

    def __init__(self, command: list[str], *, url: str, roots, server):
        self.argv = [*command, "sync", "--url", url, "--roots", str(roots),
                     "--dir", str(server.trust_dir), "--ssh-path", server.path]  # fmt: skip
        self.stopping = threading.Event()
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def sync_once(self) -> None:
        result = subprocess.run(self.argv, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            self.failures.append(result.stderr)

    def _loop(self) -> None:
        while not self.stopping.wait(0.5):
            self.sync_once()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=90)


@pytest.fixture
def probed_path(live_server, settings, tmp_path):
    settings.TRUST_PUBLISH_DIR = tmp_path / "published"
    settings.DATA_DIR = tmp_path / "data"  # the probe's known_hosts file lives here
    settings.DRILLS_SSH_PROBE_PROPAGATION_SECONDS = 60
    services.keys_bootstrap()
    user_make("alex-approver", role_names=("approver",))
    user_make("bea-approver", role_names=("approver",))
    path = path_make("bastion-ssh", service="bastion", method="ssh-certificate")
    services.bundle_refresh()
    roots = tmp_path / "roots.json"
    roots.write_text(json.dumps(roots_export()))
    return live_server, roots, path


def _steps(run) -> dict[str, DrillStep]:
    return {step.name: step for step in run.steps.all()}


def test_the_drill_logs_in_then_measures_how_long_until_sshd_refuses_the_revoked_certificate(
    sshd, probed_path, verifier_command
):
    live_server, roots, path = probed_path
    server = sshd.start(path="bastion-ssh", principals=["bg-bastion-ssh"])
    path.probe_ssh_host, path.probe_ssh_port, path.probe_ssh_login = (
        "127.0.0.1",
        server.port,
        server.user,
    )
    path.full_clean()
    path.save()
    with HostTimer(verifier_command, url=live_server.url, roots=roots, server=server) as timer:
        timer.sync_once()  # the host is set up before the drill
        run = drill_run_execute(run_id=drill_run_create(path=path, enqueue=False).pk, sync=True)
    assert timer.failures == []
    steps = _steps(run)
    assert list(steps) == [
        "dependency", "issue", "verify", "ssh_probe", "freshness", "approvers", "notify",
        "reseal", "ssh_reseal",
    ]  # fmt: skip
    assert steps["ssh_probe"].state == "passed", steps["ssh_probe"].reason
    assert steps["ssh_probe"].evidence["outcome"] == "accepted"
    assert steps["ssh_reseal"].state == "passed", steps["ssh_reseal"].reason
    propagation = steps["ssh_reseal"].evidence["propagation_ms"]
    assert isinstance(propagation, int) and propagation >= 0
    assert run.state == "passed", run.failure_reason
    # sshd saw both: the accepted login and the refusal of the revoked certificate.
    log = server.log_text()
    assert f"Accepted publickey for {server.user}" in log and "revoked" in log.lower()

    [row] = [row for row in report_build(days=1)["paths"] if row["path"] == "bastion-ssh"]
    assert row["probe"] is True
    assert row["propagation_last_ms"] == propagation == row["propagation_max_ms"]


def test_a_probe_host_where_nothing_listens_fails_the_drill_as_unreachable(probed_path):
    _, _, path = probed_path
    port = free_port()
    path.probe_ssh_host, path.probe_ssh_port, path.probe_ssh_login = "127.0.0.1", port, "bg"
    path.save()
    run = drill_run_execute(run_id=drill_run_create(path=path, enqueue=False).pk, sync=True)
    step = _steps(run)["ssh_probe"]
    assert step.state == "failed"
    assert step.reason.startswith(f"The probe host bg@127.0.0.1:{port} is unreachable (")
    assert "Connection refused" in step.reason
    assert run.state == "failed"
    # The re-seal still revoked the drill certificate; nothing to wait for afterwards.
    assert _steps(run)["reseal"].state == "passed"
    assert _steps(run)["ssh_reseal"].state == "skipped"
    assert "never logged in" in _steps(run)["ssh_reseal"].reason
