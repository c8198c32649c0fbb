"""SSH paths are separate: each has its own CA (validation and a database constraint), a
path-specific principal by default, and optional source-address / force-command options."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import load_ssh_public_identity
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from breakglass.access.credentials import grant_issue_drill
from breakglass.access.models import BackupPath
from breakglass.keys.models import SigningKey
from tests.breakglass.conftest import path_make

SSH = BackupPath.Method.SSH_CERTIFICATE


def _certificate(credential: str):
    return load_ssh_public_identity(credential.encode())


def test_two_paths_cannot_share_an_ssh_ca(trust):
    bastion = path_make("bastion-ssh", method=SSH)
    database = path_make("database-admin-ssh", service="db", method=SSH)
    database.ssh_ca = bastion.ssh_ca
    with pytest.raises(ValidationError, match="each SSH path needs its own CA"):
        database.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        database.save()


def test_a_certificate_carries_the_path_specific_principal_by_default(trust):
    path = path_make("bastion-ssh", method=SSH)
    _grant, credential = grant_issue_drill(path=path, drill_ref="d1")
    certificate = _certificate(credential)
    assert certificate.valid_principals == [b"bg-bastion-ssh"]
    assert certificate.extensions == {b"permit-pty": b""}
    assert certificate.critical_options == {}


def test_source_address_and_force_command_become_critical_options(trust):
    path = path_make("bastion-ssh", method=SSH)
    path.ssh_source_addresses = ["10.0.0.0/8", "2001:db8::/32"]
    path.ssh_force_command = "/usr/local/sbin/recover-db"
    path.full_clean()
    path.save()
    _grant, credential = grant_issue_drill(path=path, drill_ref="d1")
    assert _certificate(credential).critical_options == {
        b"force-command": b"/usr/local/sbin/recover-db",
        b"source-address": b"10.0.0.0/8,2001:db8::/32",
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ssh_source_addresses", ["10.0.0.1/8"], "not a CIDR block"),
        ("ssh_source_addresses", ["everywhere"], "not a CIDR block"),
        ("ssh_source_addresses", "10.0.0.0/8", "list of CIDR blocks"),
        ("ssh_principals", ["root,admin"], "not a usable principal"),
        ("ssh_principals", ["*"], "not a usable principal"),
        ("ssh_force_command", "ls\nrm -rf /", "one line"),
    ],
)
def test_unusable_ssh_options_are_refused_with_a_clear_message(trust, field, value, message):
    path = path_make("bastion-ssh", method=SSH)
    setattr(path, field, value)
    with pytest.raises(ValidationError, match=message):
        path.full_clean()


def test_a_probe_host_needs_a_login(trust):
    path = path_make("bastion-ssh", method=SSH)
    path.probe_ssh_host = "10.1.2.3"
    with pytest.raises(ValidationError, match="needs the login"):
        path.full_clean()


def test_check_paths_reports_ssh_paths_whose_cas_have_the_same_key(trust, capsys):
    bastion = path_make("bastion-ssh", method=SSH)
    database = path_make("database-admin-ssh", service="db", method=SSH)
    # The same public key under another row (e.g. imported twice): hosts cannot tell.
    database.ssh_ca.public_key = bastion.ssh_ca.public_key
    database.ssh_ca.save(update_fields=["public_key"])
    with pytest.raises(SystemExit) as exited:
        call_command("check_paths")
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "SHARED CA bastion-ssh and database-admin-ssh" in out


def test_check_paths_passes_when_every_ssh_path_has_its_own_ca(trust, capsys):
    path_make("bastion-ssh", method=SSH)
    path_make("database-admin-ssh", service="db", method=SSH)
    call_command("check_paths")
    assert "SHARED CA" not in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_paths_that_shared_a_ca_their_own(settings):
    before = [
        ("breakglass", "0002_grants_approvals_api_tokens"),
        ("keys", "0002_deployment_issuer"),
    ]
    after = [("breakglass", "0004_ssh_ca_per_path")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    from breakglass.keys.services import ssh_ca_create

    shared = ssh_ca_create(name="demo-ssh-ca")
    Group = apps.get_model("auth", "Group")
    Team = apps.get_model("breakglass", "Team")
    Service = apps.get_model("breakglass", "CriticalService")
    Path = apps.get_model("breakglass", "BackupPath")
    group = Group.objects.create(name="responders-m")
    team = Team.objects.create(name="T", slug="t")
    service = Service.objects.create(name="S", slug="s", owning_team=team)
    for slug in ("bastion-ssh", "database-admin-ssh", "vpn-console-ssh"):
        Path.objects.create(
            service=service,
            name=slug,
            slug=slug,
            method="ssh-certificate",
            approver_group=group,
            responder_group=group,
            ssh_ca_id=shared.pk,
            ssh_principals=["breakglass"],
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    cas = dict(BackupPath.objects.values_list("slug", "ssh_ca_id"))
    assert cas["bastion-ssh"] == shared.pk  # the first keeps it
    assert len(set(cas.values())) == 3
    for ca in SigningKey.objects.filter(pk__in=cas.values()):
        assert ca.purpose == SigningKey.Purpose.SSH_CA and ca.state == SigningKey.State.ACTIVE
    # The new CAs can sign: their private keys decrypt under the key-encryption key.
    _grant, credential = grant_issue_drill(
        path=BackupPath.objects.get(slug="vpn-console-ssh"), drill_ref="m"
    )
    assert _certificate(credential).valid_principals == [b"breakglass"]


def test_the_admin_edits_the_ssh_login_and_the_probe_but_not_the_guarding_options(
    trust, administrator
):
    # The CA, principals, source addresses and forced command guard access: they change
    # through /access/policy/ (two-person rule), where a shared CA is refused
    # (tests/breakglass/test_policy_changes.py::test_a_shared_ssh_ca_is_refused_as_a_policy_change).
    from tests.conftest import verified_client

    bastion = path_make("bastion-ssh", method=SSH)
    database = path_make("database-admin-ssh", service="db", method=SSH)
    client = verified_client(administrator)
    url = f"/admin/breakglass/backuppath/{database.pk}/change/"
    page = client.get(url).content.decode()
    for field in ("ssh_login", "probe_ssh_host", "probe_ssh_login"):
        assert f'name="{field}"' in page
    for field in ("ssh_ca", "ssh_source_addresses", "ssh_principals"):
        assert f'name="{field}"' not in page
    assert "Drill probe" in page
    form = {
        "name": database.name, "request_ttl_minutes": 30, "ssh_login": "repair",
        "probe_ssh_port": 22, "ssh_ca": bastion.ssh_ca_id,  # read-only: ignored
    }  # fmt: skip
    response = client.post(url, form)
    assert response.status_code == 302
    database.refresh_from_db()
    assert database.ssh_login == "repair"
    assert database.ssh_ca_id != bastion.ssh_ca_id
