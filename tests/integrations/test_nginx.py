"""nginx auth_request -> `breakglass serve` (docs/integrations/nginx.md), all real programs.

nginx runs the documented `http` block, the two sidecars run the documented commands from
the single-file verifier under Debian's python3 (without --state), and the upstream is a
loopback HTTP server that records what reached it.
"""

from __future__ import annotations

import json
import shutil
import socket
import time

import pytest

from breakglass.core.kit import kit_token_claims, kit_token_mint
from tests.integrations.hosts import NginxSite, private_root_directory
from tests.verifier.sealed import cli, host_bundle, kit_key, make_kit


@pytest.fixture
def site(verifier_command, live_trust):
    root = private_root_directory("breakglass-nginx-")
    site = None
    try:
        conf = live_trust.install(root / "etc-breakglass")
        site = NginxSite(root, verifier_command, conf=conf, audience="sso")
        site.put_trust_bundle = lambda **bundle: site.put_bundle(live_trust.bundle(**bundle))
        with site.nginx:
            yield site
    finally:
        if site is not None:
            site.close()
        shutil.rmtree(root, ignore_errors=True)


def test_a_valid_token_reaches_the_upstream_with_the_responder_named(site, live_trust):
    status, _, body = site.get("/admin/users", live_trust.token())
    assert (status, body) == (200, "app saw rita-responder")
    assert "Authorization" not in site.upstream.seen[-1]  # the token stays at the edge


@pytest.mark.parametrize(
    "claims",
    [{"jti": "revoked-at-start-0001"}, {"aud": "vpn"}, {"drill": True}, {"scope": "ssh:login"}],
    ids=["revoked", "wrong_audience", "drill", "missing_scope"],
)
def test_refused_tokens_get_401_and_never_reach_the_upstream(site, live_trust, claims):
    site.put_trust_bundle(version=8, revoked_jti=["revoked-at-start-0001"])
    status, _, _ = site.get("/admin/users", live_trust.token(**claims))
    assert status == 401
    assert site.upstream.seen == []
    assert site.get("/admin/users")[0] == 401  # no token at all


def test_an_older_bundle_put_back_on_disk_does_not_unrevoke(site, live_trust):
    token = live_trust.token(jti="to-be-revoked-0001")
    assert site.get("/admin/", token)[0] == 200
    site.put_trust_bundle(version=8, revoked_jti=["to-be-revoked-0001"])
    assert site.get("/admin/", token)[0] == 401
    site.put_trust_bundle(version=7)  # validly signed, older, without the revocation
    assert site.get("/admin/", token)[0] == 401
    assert "older than the required version 8" in site.sidecar_log()
    assert site.get("/admin/", live_trust.token())[0] == 200  # still serving version 8


def test_a_drill_token_passes_the_probe_location_only(site, live_trust):
    drill = live_trust.token(drill=True, jti="drill-probe-0001")
    status, headers, _ = site.get("/breakglass-drill-probe", drill)
    assert (status, headers["Content-Type"]) == (200, "image/gif")
    assert site.get("/admin/", drill)[0] == 401
    assert site.get("/breakglass-drill-probe")[0] == 401
    site.put_trust_bundle(version=8, revoked_jti=["drill-probe-0001"])
    assert site.get("/breakglass-drill-probe", drill)[0] == 401


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /auth HTTP/1.1 x\r\n\r\n",
        b"GET /auth HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00",
    ],
)
def test_malformed_request_lines_get_a_400_and_no_traceback(site, request_line):
    def answer(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(request_line)
            connection.shutdown(socket.SHUT_WR)
            return connection.makefile("rb").read()

    direct = answer(site.sidecar_port)
    assert direct.startswith(b"HTTP/1.0 400 "), direct[:80]
    assert b"X-Breakglass-Error: bad_request" in direct
    # Through nginx, nginx refuses by itself (400, or 505 for HTTP/9.9); nothing gets through.
    assert answer(site.port).split(b" ")[1] in (b"400", b"505")
    assert site.upstream.seen == []
    log = site.sidecar_log()
    assert "Traceback" not in log and "AttributeError" not in log
    assert '"status": 400' in log


@pytest.fixture
def kit_outage(site, tmp_path):
    """Breakglass has been down for three days: nothing of it runs (the custodians mint
    with the CLI, no database reachable) and the bundle the host synced before, which
    carries the kit, has expired. Returns (the kit document, its shares)."""
    now = int(time.time())
    document, shares = make_kit("kit-edge", now=now, scopes=("admin",))
    site.put_bundle(host_bundle([document], now=now, expired=True, version=8))
    (tmp_path / "kit.json").write_text(json.dumps(document))
    return document, shares


def test_past_the_bundles_expiry_a_kit_token_reaches_the_upstream_and_a_normal_one_does_not(
    site, live_trust, kit_outage, tmp_path
):
    _, shares = kit_outage
    minted = cli(
        "kit", "mint", "--kit-file", tmp_path / "kit.json", "--audience", "sso",
        "--scope", "admin", "--minutes", "30", "--subject", "rita", "--reason",
        "payments admin and Breakglass are down", "--journal", tmp_path / "journal.log",
        shares=[shares[2], shares[0]],
    )  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    assert site.get("/admin/users", live_trust.token())[0] == 401
    assert site.upstream.seen == []
    assert "bundle version 8 expired at" in site.sidecar_log()

    status, _, body = site.get("/admin/users", minted.stdout.strip())
    assert (status, body) == (200, "app saw rita")
    assert "Authorization" not in site.upstream.seen[-1]


@pytest.mark.parametrize(
    "beyond, reason",
    [
        ({"minutes": 120}, "token lifetime 7200s exceeds the 3600s cap of kit 'kit-edge'"),
        ({"scope": "admin root"}, "kit 'kit-edge' does not grant scope 'root'"),
    ],
    ids=["lifetime over the kit's maximum", "a scope the kit does not grant"],
)
def test_a_kit_token_beyond_its_kits_policy_is_refused_behind_nginx(
    site, kit_outage, beyond, reason
):
    """Signed with the real kit key, which only the CLI's own checks would have stopped."""
    document, shares = kit_outage
    kit, key = kit_key(document, shares)
    now = int(time.time())
    claims = kit_token_claims(
        kit, audience="sso", scopes=["admin"], minutes=30, subject="rita",
        custodians=["Alice", "Bob"], now=now,
    )  # fmt: skip
    if "minutes" in beyond:
        claims["exp"] = now + beyond["minutes"] * 60
    else:
        claims["scope"] = beyond["scope"]
    assert site.get("/admin/users", kit_token_mint(kit, key, claims))[0] == 401
    assert site.upstream.seen == []
    assert reason in site.sidecar_log()
