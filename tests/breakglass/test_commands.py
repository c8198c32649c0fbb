"""The commands: check_paths, seed_demo, issue_grant, revoke_grant, demo_otp."""

import io
import os
import stat

import pytest
from django.core.management import CommandError, call_command

from breakglass.access.grants import grant_request
from breakglass.access.models import BackupPath, CriticalService, Grant
from tests.breakglass.conftest import path_make


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def demo(db, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.DATA_DIR = tmp_path / "data"
    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = run("seed_demo")
    assert code == 0
    return out


def test_the_demo_has_18_services_each_with_a_backup_path(demo):
    assert CriticalService.objects.count() == 18
    assert not CriticalService.objects.filter(backup_paths__isnull=True).exists()
    methods = set(BackupPath.objects.values_list("method", flat=True))
    assert methods == {"signed-token", "ssh-certificate"}
    assert set(BackupPath.objects.values_list("approvals_required", flat=True)) == {1, 2}


def test_seed_demo_says_exactly_how_to_log_in(demo, settings):
    assert "/accounts/login/" in demo
    assert "python manage.py demo_otp USERNAME" in demo
    credentials = settings.DATA_DIR / "demo-credentials.txt"
    assert str(credentials) in demo
    assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
    assert "rita" in credentials.read_text() and "password:" in credentials.read_text()


def test_seed_demo_is_idempotent(demo, settings):
    before = (settings.DATA_DIR / "demo-credentials.txt").read_text()
    code, out, _ = run("seed_demo")
    assert code == 0
    assert "new this run: none" in out
    assert CriticalService.objects.count() == 18
    assert (settings.DATA_DIR / "demo-credentials.txt").read_text() == before


def test_the_demo_has_a_2_of_3_kit_whose_shares_are_in_the_credentials_files(demo, settings):
    import json

    from breakglass.core.kit import kit_key_rebuild, kit_load, share_check
    from breakglass.keys.models import Kit

    kit = Kit.objects.get(kit_id="demo-kit")
    assert (kit.threshold, kit.custodians.count()) == (2, 3)
    creds = json.loads((settings.DATA_DIR / "demo-credentials.json").read_text())
    words = creds["_kit"]["shares"]
    assert sorted(words) == ["ada", "bea", "dana"] and all(len(w) == 33 for w in words.values())
    text = (settings.DATA_DIR / "demo-credentials.txt").read_text()
    assert f"  bea: {' '.join(words['bea'])}" in text
    certified = kit_load(kit.document, None)
    shares = [share_check(certified, " ".join(words[name])) for name in ("ada", "dana")]
    assert kit_key_rebuild(certified, shares)  # two of them open it
    assert Kit.objects.count() == 1 and run("seed_demo")[0] == 0 and Kit.objects.count() == 1


def test_check_paths_names_the_demos_flawed_path_and_exits_1(demo):
    code, out, err = run("check_paths")
    assert code == 1
    assert out.splitlines()[0] == "FLAWED sso-admin-via-chat (into sso): sso -> chat -> sso"
    assert "1 flawed" in err
    # The demo's second flaw: a 1-approval path reaches what sso-break-glass guards with 2.
    assert (
        "WARNING sso-admin-via-chat reaches aud=sso scope=admin with 1 approval instead of 2 "
        "than sso-break-glass"
    ) in out.splitlines()


def test_check_paths_exits_0_when_every_path_is_independent(trust):
    path_make(requires=("dns",))
    code, out, _ = run("check_paths")
    assert code == 0
    assert "1 paths checked, 0 flawed" in out


def test_check_paths_finds_a_three_step_chain(trust):
    from tests.breakglass.conftest import service_make

    service_make("vpn", depends_on=("chat",))
    service_make("chat", depends_on=("sso",))
    path_make(requires=("vpn",))
    code, out, _ = run("check_paths")
    assert code == 1
    assert "sso -> vpn -> chat -> sso" in out


def test_demo_otp_prints_a_code_the_login_accepts(demo):
    from django.contrib.auth.models import User

    from breakglass.accounts.forms import OTPForm

    code, out, _ = run("demo_otp", "rita")
    assert code == 0 and len(out.strip()) == 6
    assert OTPForm(User.objects.get(username="rita"), {"otp_token": out.strip()}).is_valid()


def test_demo_otp_refuses_in_production(demo, settings):
    settings.BREAKGLASS_ENV = "production"
    with pytest.raises(CommandError, match="refuses to run"):
        call_command("demo_otp", "rita")


def test_issue_grant_emergency_prints_the_token(sso_path, responder):
    code, out, err = run(
        "issue_grant",
        "--path",
        "sso-backup",
        "--user",
        responder.username,
        "--reason",
        "idp down",
        "--emergency",
    )
    assert code == 0
    assert out.strip() == out.strip().replace("\n", "") and out.count(".") == 2
    assert "post-use review is required" in err
    assert Grant.objects.get().emergency


def test_issue_grant_without_emergency_prints_the_pending_id(sso_path, responder):
    code, out, _ = run(
        "issue_grant", "--path", "sso-backup", "--user", responder.username, "--reason", "r"
    )
    assert out.strip() == str(Grant.objects.get().pk)


def test_issue_grant_ssh_reads_the_public_key_file(trust, responder, ssh_public_key, tmp_path):
    path_make("bastion-ssh", method="ssh-certificate", scopes=("login",))
    key_file = tmp_path / "id.pub"
    key_file.write_text(ssh_public_key + "\n")
    code, out, _ = run(
        "issue_grant",
        "--path",
        "bastion-ssh",
        "--user",
        responder.username,
        "--reason",
        "r",
        "--emergency",
        "--ssh-public-key",
        str(key_file),
        "--minutes",
        "5",
    )
    assert out.startswith("ssh-ed25519-cert-v01@openssh.com ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--path", "nope"], "Unknown path 'nope'. The paths: sso-backup."),
        (["--path", "sso-backup", "--minutes", "999"], "over this path's maximum"),
        (["--path", "sso-backup", "--scope", "root"], "Scope root is outside"),
    ],
)
def test_issue_grant_bad_input_is_a_clear_error(sso_path, responder, args, message):
    with pytest.raises(CommandError, match=message):
        call_command(
            "issue_grant",
            "--user",
            responder.username,
            "--reason",
            "r",
            *args,
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert not Grant.objects.exists()


def test_revoke_grant_by_jti(sso_path, responder, django_capture_on_commit_callbacks):
    from breakglass.access.grants import grant_self_issue

    grant, _ = grant_self_issue(
        path=sso_path, requester=responder, reason="r", confirmation="sso-backup"
    )
    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = run("revoke_grant", "--jti", grant.jti, "--reason", "done")
    assert f"Revoked grant {grant.pk}" in out
    grant.refresh_from_db()
    assert grant.state == Grant.State.REVOKED


def test_revoke_grant_unknown_jti_is_a_clear_error(sso_path, responder):
    grant_request(path=sso_path, requester=responder, reason="r")
    with pytest.raises(CommandError, match="No grant has jti 'zzz'"):
        call_command("revoke_grant", "--jti", "zzz", "--reason", "x")


def test_the_demo_end_to_end(demo, django_capture_on_commit_callbacks):
    """The issue's "done when": on the seeded demo a responder breaks the glass and gets
    an approver-gated grant, both tokens verify with PyJWT against the exported bundle's
    key, a revoked token is in the next bundle, and check_paths names the flawed path."""
    import json

    import jwt
    from django.contrib.auth.models import User

    from breakglass.access.credentials import grant_credential
    from breakglass.access.grants import grant_approve
    from breakglass.access.selectors import path_dependency_chain
    from breakglass.keys.selectors import published_bundle_path

    def bundle():
        return json.loads(published_bundle_path().read_text())["payload"]

    def verify(token, audience):
        [entry] = [
            k for k in bundle()["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"]
        ]
        key = jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": entry["x"]}, algorithm="EdDSA")
        return jwt.decode(token, key.key, algorithms=["EdDSA"], audience=audience)

    rita, alex, bea = (User.objects.get(username=name) for name in ("rita", "alex", "bea"))
    _, emergency_token, _ = run(
        "issue_grant",
        "--path",
        "dns-emergency-token",
        "--user",
        "rita",
        "--reason",
        "zone gone",
        "--emergency",
    )
    assert verify(emergency_token.strip(), "dns")["emergency"] is True

    _, pending_id, _ = run(
        "issue_grant", "--path", "sso-break-glass", "--user", "rita", "--reason", "IdP down"
    )
    grant = Grant.objects.get(pk=int(pending_id))
    grant_approve(grant=grant, approver=alex)
    grant = grant_approve(grant=grant, approver=bea)
    approved_token = grant_credential(grant=grant, user=rita)
    assert verify(approved_token, "sso")["approvers"] == ["alex", "bea"]

    with django_capture_on_commit_callbacks(execute=True):
        run("revoke_grant", "--jti", grant.jti, "--reason", "incident closed")
    assert grant.jti in [entry["jti"] for entry in bundle()["revoked_jti"]]

    flawed = BackupPath.objects.get(slug="sso-admin-via-chat")
    assert path_dependency_chain(path=flawed) == ["sso", "chat", "sso"]
    assert path_dependency_chain(path=BackupPath.objects.get(slug="sso-break-glass")) is None
