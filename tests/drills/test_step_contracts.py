"""Every drill step passes the drill step contract (devkit/contracts.py): a passing step
gives JSON evidence and no reason, a failing one says why in a sentence. Failures here are
real ones (a revoked issuer key, an unreadable bundle, approvers without OTP), not stubs."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.core.krl import krl_from_bundle, trusted_ca_file
from breakglass.keys.models import SigningKey
from breakglass.keys.selectors import bundle_current, published_bundle_path
from breakglass.keys.services import bundle_refresh
from devkit.contracts import DrillStepContract
from drills.engine import drill_run_create
from drills.models import STEP_NAMES
from drills.steps import STEPS, StepContext, step_run
from tests.integrations.hosts import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("autocommit_callbacks")]


def test_the_steps_are_exactly_the_ones_with_a_contract_class():
    classes = {cls.step for cls in _contract_classes(StepContractBase)}
    assert classes == set(STEPS) == set(STEP_NAMES)


def _contract_classes(base):
    for cls in base.__subclasses__():
        if getattr(cls, "step", None):
            yield cls
        yield from _contract_classes(cls)


class StepContractBase(DrillStepContract):
    before: tuple[str, ...] = ()  # steps whose output this one needs

    @pytest.fixture(autouse=True)
    def _paths(self, healthy_path, flawed_path, settings):
        self.path, self.flawed, self.settings = healthy_path, flawed_path, settings

    def _context(self, path):
        run = drill_run_create(path=path, enqueue=False)
        ctx = StepContext(run=run, path=path, sync=True)
        for name in self.before:
            ok, _, reason = step_run(name, ctx)
            assert ok, reason
        return ctx

    def context(self):
        return self._context(self.path)


class TestDependencyStep(StepContractBase):
    step = "dependency"

    def failing_context(self):
        return self._context(self.flawed)


class TestIssueStep(StepContractBase):
    step = "issue"

    def failing_context(self):
        # An issuer key in its last seconds, which the scheduler failed to rotate: no
        # token may outlive the key that signs it, not even a one-minute drill token.
        SigningKey.objects.filter(
            purpose=SigningKey.Purpose.ISSUER, state=SigningKey.State.ACTIVE
        ).update(not_after=timezone.now() + timedelta(seconds=30))
        return self._context(self.path)


class TestVerifyStep(StepContractBase):
    step = "verify"
    before = ("issue",)

    def failing_context(self):
        ctx = self._context(self.path)
        published_bundle_path().write_text("{not json")
        return ctx


class TestFreshnessStep(StepContractBase):
    step = "freshness"

    def failing_context(self):
        self.settings.DRILLS_BUNDLE_MARGIN_HOURS = 10 * 24  # longer than the bundle lives
        return self._context(self.path)


class TestApproversStep(StepContractBase):
    step = "approvers"

    def failing_context(self):
        TOTPDevice.objects.filter(user__groups=self.path.approver_group).delete()
        return self._context(self.path)


class TestNotifyStep(StepContractBase):
    step = "notify"
    before = ("issue",)

    def failing_context(self):
        self.settings.DRILLS_SINK_ENABLED = False
        return self._context(self.path)


class TestResealStep(StepContractBase):
    step = "reseal"
    before = ("issue",)

    def failing_context(self):
        ctx = self._context(self.path)
        blocker = published_bundle_path().parent / "not-a-directory"
        blocker.write_text("x")
        self.settings.TRUST_PUBLISH_DIR = blocker  # the revocation cannot be published
        return ctx


class SshProbeContractBase(StepContractBase):
    """The SSH probe steps against a real sshd serving the drilled path."""

    step = ""

    @pytest.fixture(autouse=True)
    def _sshd(self, ssh_path, sshd, settings, tmp_path):
        settings.DATA_DIR = tmp_path / "data"  # the probe's known_hosts
        self.server = sshd.start(path="bastion-ssh", principals=["bg-bastion-ssh"])
        ssh_path.probe_ssh_host = "127.0.0.1"
        ssh_path.probe_ssh_port = self.server.port
        ssh_path.probe_ssh_login = self.server.user
        ssh_path.save()
        bundle_refresh()  # the new SSH path enters the bundle
        self.ssh_path = ssh_path
        self.host_syncs()

    def host_syncs(self):
        """What `breakglass sync` installs, from the current bundle (tested over HTTP in
        tests/integrations; here the files are written directly)."""
        payload = bundle_current()["payload"]
        folder = self.server.trust_dir / "ssh" / "bastion-ssh"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ca.pub").write_bytes(trusted_ca_file(payload, ["bastion-ssh"]))
        (folder / "revoked.krl").write_bytes(krl_from_bundle(payload, "bastion-ssh"))

    def context(self):
        return self._context(self.ssh_path)


class TestSshProbeStep(SshProbeContractBase):
    step = "ssh_probe"
    before = ("issue",)

    def failing_context(self):
        ctx = self._context(self.ssh_path)
        self.ssh_path.probe_ssh_port = free_port()  # nothing listens there
        return ctx


class TestSshResealStep(SshProbeContractBase):
    step = "ssh_reseal"
    before = ("issue", "ssh_probe", "reseal")

    def context(self):
        ctx = self._context(self.ssh_path)
        self.host_syncs()
        return ctx

    def failing_context(self):
        self.settings.DRILLS_SSH_PROBE_PROPAGATION_SECONDS = 0  # and the host never syncs
        return self._context(self.ssh_path)


class HttpProbeContractBase(StepContractBase):
    """The HTTP probe steps against a real `breakglass serve --allow-drill` (the sidecar's
    own handler over loopback HTTP) reading the published bundle, as a synced host does."""

    step = ""

    @pytest.fixture(autouse=True)
    def _probe(self, probe_target, tmp_path):
        self.probe_target, self.tmp = probe_target, tmp_path
        self.path.probe_url = probe_target(published_bundle_path())
        self.path.save(update_fields=["probe_url"])


class TestHttpProbeStep(HttpProbeContractBase):
    step = "http_probe"
    before = ("issue",)

    def failing_context(self):
        # A target whose verifier was started without --allow-drill.
        self.path.probe_url = self.probe_target(published_bundle_path(), allow_drill=False)
        return self._context(self.path)


class TestHttpResealStep(HttpProbeContractBase):
    step = "http_reseal"
    before = ("issue", "http_probe", "reseal")

    def failing_context(self):
        stale = self.tmp / "never-synced-bundle.json"  # the host never syncs again
        stale.write_bytes(published_bundle_path().read_bytes())
        self.path.probe_url = self.probe_target(stale)
        self.settings.DRILLS_PROBE_PROPAGATION_SECONDS = 0
        return self._context(self.path)
