"""Registry, keys and people for drill tests: a healthy token path, a flawed path, an SSH
path, and an approver pool big enough for k=2."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group

from breakglass.access.models import Team
from breakglass.accounts import roles
from devkit.factories import user_make
from tests.breakglass.conftest import path_make, service_make
from tests.integrations.sshd import sshd  # noqa: F401 - fixture: a real sshd (SSH probe steps)


@pytest.fixture(autouse=True)
def _trust_dir(settings, tmp_path):
    """Each test publishes its trust bundle into its own directory."""
    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    settings.BREAKGLASS_ISSUER = "https://breakglass.test"
    return settings.TRUST_PUBLISH_DIR


@pytest.fixture
def approvers(db):
    """Two usable approvers for k=2 paths."""
    return [
        user_make("alex-approver", role_names=(roles.APPROVER,)),
        user_make("bea-approver", role_names=(roles.APPROVER,)),
    ]


@pytest.fixture
def healthy_path(trust, approvers):
    """sso-backup into SSO: needs only dns, which does not need SSO."""
    service_make("dns")
    return path_make("sso-backup", service="sso", requires=("dns",))


@pytest.fixture
def flawed_path(trust, approvers):
    """sso-via-chat: needs chat, and chat logs in through SSO."""
    service_make("chat", depends_on=("sso",))
    return path_make("sso-via-chat", service="sso", requires=("chat",))


@pytest.fixture
def ssh_path(trust, approvers):
    return path_make("bastion-ssh", service="bastion", method="ssh-certificate")


def team_with(slug: str, *members) -> Team:
    team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    team.members.add(*members)
    return team


def responders(*names: str, group: str = roles.RESPONDER):
    Group.objects.get_or_create(name=group)
    return [user_make(name, role_names=(group,)) for name in names]


@pytest.fixture
def autocommit_callbacks(monkeypatch):
    """Run on_commit callbacks at once, as they run in production where each service
    commits on return; a test's wrapping transaction would otherwise hold back the bundle
    file that re-seal reads. Worker integration tests use real commits instead."""
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


@pytest.fixture
def probe_target(tmp_path):
    """A `breakglass serve` sidecar (the real handler, over real loopback HTTP) for the
    path's service, reading a bundle file: `start(bundle_path, allow_drill=...)` -> URL."""
    import threading
    from http.server import ThreadingHTTPServer

    from breakglass.core.sidecar import BundleSource, handler_for
    from breakglass.keys.selectors import published_roots_path

    servers = []

    def start(bundle_path, *, audience="sso", allow_drill=True, clock=time.time) -> str:
        source = BundleSource(
            bundle_path=str(bundle_path), roots_path=str(published_roots_path()), clock=clock
        )
        assert source.current() is not None, source.problem
        handler = handler_for(
            source=source, audience=audience, scope=None, allow_drill=allow_drill, clock=clock
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/breakglass-drill-probe"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
