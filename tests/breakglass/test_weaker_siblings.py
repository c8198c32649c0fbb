"""A path is only as strong as the weakest other path to the same authority: the demo's
`sso-admin-via-chat` (1 approval) yields tokens accepted for aud=sso scope=admin, which
`sso-break-glass` guards with 2."""

import io

from breakglass.access.selectors import paths_weaker_siblings
from breakglass.core.depgraph import PathGuard, ssh_authority, weaker_siblings
from tests.breakglass.conftest import path_make
from tests.conftest import verified_client


def guard(slug, authorities, approvals=2, self_issue=False):
    return PathGuard(slug, frozenset(authorities), approvals, self_issue)


def test_fewer_approvals_for_the_same_audience_and_scope_is_a_weaker_sibling():
    found = weaker_siblings(
        [
            guard("sso-break-glass", {"aud=sso scope=admin", "aud=sso scope=read"}, 2),
            guard("sso-admin-via-chat", {"aud=sso scope=admin"}, 1),
        ]
    )
    assert [str(f) for f in found] == [
        "sso-admin-via-chat reaches aud=sso scope=admin with 1 approval instead of 2 "
        "than sso-break-glass"
    ]


def test_self_issue_where_the_sibling_needs_approvals_is_a_weaker_sibling():
    found = weaker_siblings(
        [guard("a", {"aud=db scope=write"}, 2), guard("b", {"aud=db scope=write"}, 2, True)]
    )
    assert [(f.stronger, f.weaker, f.reason) for f in found] == [
        ("a", "b", "self-issue (no approval)")
    ]


def test_different_scopes_or_services_are_independent():
    assert (
        weaker_siblings(
            [
                guard("sso-admin", {"aud=sso scope=admin"}, 2),
                guard("sso-read", {"aud=sso scope=read"}, 1),
                guard("dns-admin", {"aud=dns scope=admin"}, 1, True),
            ]
        )
        == []
    )


def test_equal_guards_are_not_flagged():
    assert weaker_siblings([guard("a", {"x"}, 2), guard("b", {"x"}, 2)]) == []


def test_the_registry_finds_the_demos_weaker_sibling(trust):
    path_make(
        "sso-break-glass", scopes=("read", "admin"), approvals_required=2, allow_self_issue=False
    )
    path_make("sso-admin-via-chat", scopes=("admin",), approvals_required=1, allow_self_issue=False)
    [finding] = paths_weaker_siblings()
    assert (finding.stronger, finding.weaker, finding.authority) == (
        "sso-break-glass",
        "sso-admin-via-chat",
        "aud=sso scope=admin",
    )


def test_ssh_paths_trusted_through_one_ca_key_and_principal_are_siblings():
    shared = ssh_authority(ca="AAAAC3Nz...", principal="bg-db")
    found = weaker_siblings([guard("db-ssh", {shared}, 2), guard("db-ssh-lite", {shared}, 1)])
    assert [(f.stronger, f.weaker) for f in found] == [("db-ssh", "db-ssh-lite")]


def test_ssh_paths_with_their_own_cas_are_independent(trust):
    path_make("db-ssh", method="ssh-certificate", approvals_required=2, allow_self_issue=False)
    path_make("db-ssh-lite", method="ssh-certificate", approvals_required=1, allow_self_issue=False)
    assert paths_weaker_siblings() == []


def test_an_inactive_path_is_not_a_sibling(trust):
    path_make("sso-break-glass", approvals_required=2, allow_self_issue=False)
    chat = path_make("sso-admin-via-chat", approvals_required=1, allow_self_issue=False)
    chat.is_active = False
    chat.save()
    assert paths_weaker_siblings() == []


def _run_check_paths():
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_paths", stdout=out, stderr=err)
    except SystemExit as exited:
        return exited.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_check_paths_warns_about_a_weaker_sibling_by_default(trust):
    path_make("sso-break-glass", approvals_required=2, allow_self_issue=False)
    path_make("sso-admin-via-chat", scopes=("admin",), approvals_required=1, allow_self_issue=False)
    code, out, _ = _run_check_paths()
    assert code == 0
    assert "WARNING sso-admin-via-chat reaches aud=sso scope=admin with 1 approval" in out
    assert "1 weaker sibling." in out


def test_check_paths_fails_on_a_weaker_sibling_when_the_deployment_says_error(trust, settings):
    settings.BREAKGLASS_WEAKER_SIBLING = "error"
    path_make("sso-break-glass", approvals_required=2, allow_self_issue=False)
    path_make("sso-admin-via-chat", scopes=("admin",), approvals_required=1, allow_self_issue=False)
    code, out, err = _run_check_paths()
    assert code == 1
    assert "WEAKER sso-admin-via-chat" in out and "1 weaker sibling" in err


def test_the_registry_page_and_api_flag_the_undercut_path(trust, responder):
    path_make("sso-break-glass", approvals_required=2, allow_self_issue=False)
    path_make("sso-admin-via-chat", scopes=("admin",), approvals_required=1, allow_self_issue=False)
    page = verified_client(responder).get("/access/").content.decode()
    assert 'id="weaker-sibling-summary"' in page
    assert "undercut: sso-admin-via-chat reaches aud=sso scope=admin" in page
