"""Every drill step passes the drill step contract (devkit/contracts.py): a passing step
gives JSON evidence and no reason, a failing one says why in a sentence. Failures here are
real ones (a revoked issuer key, an unreadable bundle, approvers without OTP), not stubs."""

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.keys.selectors import published_bundle_path
from devkit.contracts import DrillStepContract
from drills.engine import drill_run_create
from drills.models import STEP_NAMES
from drills.steps import STEPS, StepContext, step_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("autocommit_callbacks")]


def test_the_seven_steps_are_exactly_the_ones_with_a_contract_class():
    classes = {cls.step for cls in StepContractBase.__subclasses__()}
    assert classes == set(STEPS) == set(STEP_NAMES)


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
        # A deployment that caps tokens below the drill credential's five minutes.
        self.settings.BREAKGLASS_MAX_TOKEN_LIFETIME_MINUTES = 1
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
