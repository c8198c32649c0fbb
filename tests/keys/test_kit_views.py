"""The kits console: creation shows each share once, checks and retirement need the right people."""

import re

from django.utils import timezone

from breakglass.access.models import CriticalService, Team
from breakglass.core.kit import kit_load, share_check
from breakglass.core.kit_cli import check_code
from breakglass.keys.models import Kit
from devkit.factories import verified_client

FORM = {
    "kit_id": "kit-ops",
    "audiences": "sso",
    "scopes": "ssh:login",
    "max_lifetime_minutes": "60",
    "custodians": "ada-admin\nBob\nCarol",
    "threshold": "2",
    "valid_days": "730",
}


def sso():
    team = Team.objects.create(name="Platform", slug="platform")
    CriticalService.objects.create(name="SSO", slug="sso", owning_team=team)


def test_an_administrator_creates_a_kit_and_sees_each_share_once(trust, administrator):
    sso()
    client = verified_client(administrator)
    response = client.post("/trust/kits/new/", FORM)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    pages = re.findall(r'<section class="card share-page"><pre>(.*?)</pre>', response.text, re.S)
    assert len(pages) == 3 and "Custodian: Bob" in pages[1]
    kit = Kit.objects.get(kit_id="kit-ops")
    assert kit.custodians.get(index=0).user == administrator
    words = re.findall(r"\d+\. (\w+)", pages[1])
    assert len(words) == 33
    # Gone afterwards: the kits page and the stored kit never hold the words.
    listing = client.get("/trust/kits/").text
    assert "kit-ops" in listing and " ".join(words[5:9]) not in listing
    assert words[7] not in str(kit.document)


def test_a_kit_made_in_the_console_covers_the_ssh_paths_named(trust, administrator):
    from tests.breakglass.conftest import path_make

    sso()
    path_make("bastion-ssh", service="bastion", method="ssh-certificate")
    client = verified_client(administrator)
    refused = client.post("/trust/kits/new/", {**FORM, "ssh_paths": "nope-ssh"})
    assert "not an active SSH path with a CA: nope-ssh" in refused.text
    assert client.post("/trust/kits/new/", {**FORM, "ssh_paths": "bastion-ssh"}).status_code == 200
    assert Kit.objects.get(kit_id="kit-ops").ssh_paths == ["bastion-ssh"]
    assert "and SSH certificates on bastion-ssh" in client.get("/trust/kits/").text


def test_the_creation_form_names_what_is_wrong(trust, administrator):
    sso()
    response = verified_client(administrator).post(
        "/trust/kits/new/", {**FORM, "audiences": "nowhere", "threshold": "5"}
    )
    assert "Unknown service(s): nowhere" in response.text
    assert not Kit.objects.exists()


def test_only_administrators_with_a_fresh_otp_create_or_retire_kits(trust, approver, administrator):
    sso()
    assert verified_client(approver).post("/trust/kits/new/", FORM).status_code == 403
    stale = verified_client(administrator, sudo=False).post("/trust/kits/new/", FORM)
    assert stale.status_code == 302 and "/accounts/sudo" in stale["Location"]
    assert not Kit.objects.exists()


def test_a_custodian_records_a_check_with_the_code_not_the_share(trust, administrator, responder):
    sso()
    created = verified_client(administrator).post("/trust/kits/new/", FORM)
    page = re.findall(r'<section class="card share-page"><pre>(.*?)</pre>', created.text, re.S)[2]
    share = " ".join(re.findall(r"\d+\. (\w+)", page))
    kit = Kit.objects.get(kit_id="kit-ops")
    certified = kit_load(kit.document, None)
    code = check_code(certified, share_check(certified, share), now=int(timezone.now().timestamp()))
    client = verified_client(responder)
    response = client.post("/trust/kits/check/", {"code": code}, follow=True)
    assert "Recorded: Carol&#x27;s share of kit-ops is readable." in response.text
    assert kit.custodians.get(index=2).last_checked_at is not None
    wrong = client.post("/trust/kits/check/", {"code": code[:-2] + "00"}, follow=True)
    assert "does not match" in wrong.text


def test_an_administrator_retires_a_kit(trust, administrator):
    sso()
    client = verified_client(administrator)
    client.post("/trust/kits/new/", FORM)
    assert client.get("/trust/kits/kit-ops/retire/").status_code == 200
    client.post("/trust/kits/kit-ops/retire/", {"reason": "custodian left"})
    assert Kit.objects.get(kit_id="kit-ops").state == Kit.State.RETIRED
