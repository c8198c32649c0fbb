"""The steps of an automated drill, one small function each (seven, and two more that
probe the real sshd for SSH paths naming a probe host).

Every step takes the run's `StepContext` and returns `(ok, evidence, reason)`: `evidence`
is a small JSON-able dict (ints and strings, no secrets), `reason` is a sentence an
on-call engineer can act on when `ok` is False. Steps call exactly the code a real
emergency uses (grant issuance, the offline verifier, the published bundle file), so a
passing drill means the real path works.

"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_ssh_public_identity
from django.conf import settings
from django.utils import timezone

from breakglass.access.credentials import grant_issue_drill
from breakglass.access.errors import GrantError
from breakglass.access.lifecycle import grant_revoke
from breakglass.access.models import Grant
from breakglass.access.selectors import path_dependency_chain
from breakglass.core import verify_bundle, verify_token
from breakglass.core.b64 import b64url_encode
from breakglass.keys.selectors import keys_expiring, published_bundle_path, published_roots_path
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_deliver_many
from breakglass.project.progress import progress_atomic
from drills.models import (
    HTTP_PROBE_STEPS,
    SSH_PROBE_STEPS,
    Drill,
    DrillRun,
    DrillSinkDelivery,
    step_names_for,
)
from drills.selectors import approver_pool

StepResult = tuple[bool, dict, str]


class StepSkipped(Exception):
    """The step cannot run because an earlier one did not produce what it needs."""


@dataclass
class StepContext:
    run: object
    path: object
    # True in `run_drill` (no worker): outbox rows are delivered inline.
    sync: bool = False
    started_monotonic: float = field(default_factory=time.monotonic)
    grant: object | None = None
    credential: str | None = None
    claims: dict | None = None
    verified_monotonic: float | None = None
    resealed_monotonic: float | None = None
    # The SSH probe's private key (OpenSSH PEM): only in this worker's memory, never stored.
    ssh_private_key: bytes | None = None
    ssh_probe_accepted: bool = False
    http_probe_accepted: bool = False
    # Whether this context runs the notify step (automated runs do, human drills do not):
    # the drill sink message is then held back from the workers for the step to deliver.
    delivers_notify: bool = True


def step_dependency(ctx: StepContext) -> StepResult:
    path = ctx.path
    chain = path_dependency_chain(path=path)
    needs = sorted(path.requires.values_list("slug", flat=True))
    if chain:
        protected = path.service.slug
        first_hop = chain[1] if len(chain) > 1 else protected
        return (
            False,
            {"chain": chain, "requires": needs},
            f"Path {path.service.slug}/{path.slug} needs {first_hop}, which depends on "
            f"{protected}: {' -> '.join(chain)}. In an outage of {protected} this path "
            "cannot work.",
        )
    return True, {"requires": needs}, ""


def drill_credential_minutes(*, run, path) -> int | None:
    """How long a run's drill credential lives (None: DRILLS_CREDENTIAL_MINUTES).

    An automated run needs its credential from the issue step to the re-seal, seconds
    apart, so it gets one minute: its revocation then leaves the published bundle a
    minute later, which keeps the bundle every service downloads (and every drill
    verifies against) small however many runs a game day makes. A run with probe steps
    keeps the ceiling: the probe's re-seal waits up to its propagation limit for the host
    to refuse the credential, and an expired one proves nothing there. A person in a
    human drill needs minutes.
    """
    if getattr(run, "kind", None) == Drill.Kind.HUMAN:
        return None
    if set(step_names_for(path)) & {*HTTP_PROBE_STEPS, *SSH_PROBE_STEPS}:
        return None
    return 1


def step_issue(ctx: StepContext) -> StepResult:
    participant = getattr(ctx.run, "participant", None)
    ssh_public_key = None
    if ctx.path.method == "ssh-certificate" and ctx.path.probe_ssh_host:
        ctx.ssh_private_key, ssh_public_key = _ssh_probe_key()
    try:
        grant, credential = grant_issue_drill(
            path=ctx.path,
            drill_ref=ctx.run.drill_ref,
            participant=participant,
            ssh_public_key=ssh_public_key,
            lifetime_minutes=drill_credential_minutes(run=ctx.run, path=ctx.path),
            sink_delivered_inline=ctx.delivers_notify,
        )
    except Exception as exc:
        return (
            False,
            {"error": type(exc).__name__},
            f"Issuing a drill credential on {ctx.path} failed: {exc}. A real responder "
            "would be stuck at the same point.",
        )
    ctx.grant, ctx.credential = grant, credential
    with progress_atomic():  # lost in a crash: the run's drill_ref still finds the grant
        DrillRun.objects.filter(pk=ctx.run.pk).update(grant_id=grant.pk, grant_jti=grant.jti)
    return (
        True,
        {
            "grant": grant.pk,
            "jti": grant.jti,
            "drill": bool(grant.drill),
            "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
            "lifetime_minutes": grant.lifetime_minutes,
        },
        "",
    )


class PublishedTrust:
    """The published bundle.json and roots.json, parsed, and verified on first use."""

    def __init__(self, raw: tuple[bytes, bytes]) -> None:
        self.raw = raw
        self.bundle, self.roots = json.loads(raw[0]), json.loads(raw[1])
        payload = self.bundle.get("payload", {}) if isinstance(self.bundle, dict) else {}
        self.payload = payload if isinstance(payload, dict) else {}
        self.revoked = frozenset(
            entry.get("jti")
            for entry in self.payload.get("revoked_jti") or []
            if isinstance(entry, dict)
        )
        self._verified = None

    def verified(self):
        """`verify_bundle` over these files. Its verdict holds until the bundle expires,
        so it is reused until then and asked again after (which refuses the bundle)."""
        if self._verified is None or time.time() >= self._verified.expires_at:
            self._verified = None
            self._verified = verify_bundle(self.bundle, self.roots)
        return self._verified


_published: list[PublishedTrust] = []


def published_trust() -> PublishedTrust:
    """The bundle and roots as a service would fetch them: the published files, read on
    every call. As a service's verifier does (`breakglass serve`), they are parsed and
    verified again only when their bytes change: at game-day scale every run reads a
    bundle listing every revocation of the last minute, three times."""
    raw = (published_bundle_path().read_bytes(), published_roots_path().read_bytes())
    if not _published or _published[0].raw != raw:
        _published[:] = [PublishedTrust(raw)]
    return _published[0]


def step_verify(ctx: StepContext) -> StepResult:
    if ctx.credential is None:
        raise StepSkipped("no drill credential to verify (the issue step did not pass)")
    try:
        trust = published_trust()
    except (OSError, ValueError) as exc:
        return (
            False,
            {"error": type(exc).__name__},
            f"The published trust bundle could not be read ({exc}); services cannot "
            "verify any credential.",
        )
    try:
        verified = trust.verified()
        if ctx.path.method == "ssh-certificate":
            claims = _verify_ssh_certificate(ctx, verified)
        else:
            # The drill checks its own credential: the one place drills are expected.
            claims = verify_token(
                ctx.credential, verified, audience=ctx.path.service.slug, allow_drill=True
            )
    except Exception as exc:
        code = getattr(exc, "code", type(exc).__name__)
        return (
            False,
            {"error": str(code)},
            f"The drill credential does not verify offline against the published bundle "
            f"({code}: {exc}). A service would refuse a real credential the same way.",
        )
    ctx.claims = claims if isinstance(claims, dict) else {}
    ctx.verified_monotonic = time.monotonic()
    payload = trust.payload
    return (
        True,
        {
            "bundle_version": payload.get("version"),
            "audience": ctx.path.service.slug,
            "drill_claim": ctx.claims.get("drill") is True,
            "time_to_access_ms": int((ctx.verified_monotonic - ctx.started_monotonic) * 1000),
        },
        "",
    )


def _verify_ssh_certificate(ctx: StepContext, verified) -> dict:
    """What an OpenSSH host does with a certificate: the CA it trusts signed it, it is
    valid now, and (our addition, as the host's revocation list would) the bundle does not
    list its jti as revoked. The verifier library handles tokens only."""
    cert = load_ssh_public_identity(ctx.credential.strip().encode())
    if not hasattr(cert, "verify_cert_signature"):
        raise ValueError("the credential is a plain SSH key, not a certificate")
    cert.verify_cert_signature()
    ca = getattr(ctx.path, "ssh_ca", None)
    ca_x = b64url_encode(cert.signature_key().public_bytes_raw())
    if ca is None or ca_x != ca.public_key:
        raise ValueError("the certificate is not signed by the path's SSH CA")
    now = int(time.time())
    if not cert.valid_after <= now < cert.valid_before:
        raise ValueError("the certificate is not valid now")
    jti = ctx.grant.jti if ctx.grant is not None else ""
    if jti in verified.revoked_jti:
        raise ValueError("the certificate's jti is revoked in the published bundle")
    return {"jti": jti, "principals": [p.decode() for p in cert.valid_principals], "drill": True}


def step_freshness(ctx: StepContext) -> StepResult:
    margin = timedelta(hours=settings.DRILLS_BUNDLE_MARGIN_HOURS)
    key_margin = timedelta(days=settings.DRILLS_KEY_MARGIN_DAYS)
    now = timezone.now()
    try:
        payload = published_trust().payload
    except (OSError, ValueError) as exc:
        return False, {}, f"The published trust bundle could not be read ({exc})."
    expires_at = int(payload.get("expires_at") or 0)
    left = expires_at - int(now.timestamp())
    problems = []
    if left <= int(margin.total_seconds()):
        when = "expired" if left <= 0 else f"expires in {left // 60} minutes"
        problems.append(
            f"the published bundle (version {payload.get('version')}) {when}; services "
            f"start refusing every credential when it expires (margin {margin})"
        )
    expiring = []
    for key in keys_expiring(within=key_margin):
        if str(key.purpose).lower() in ("issuer", "root"):
            days = max(int((key.not_after - now).total_seconds() // 86400), 0)
            expiring.append({"kid": key.kid, "purpose": str(key.purpose), "days_left": days})
            problems.append(f"{key.purpose} key {key.name or key.kid} expires in {days} days")
    evidence = {"bundle_expires_in_s": left, "keys_expiring": expiring}
    if problems:
        return False, evidence, "Not fresh: " + "; ".join(problems) + "."
    return True, evidence, ""


def step_approvers(ctx: StepContext) -> StepResult:
    path = ctx.path
    usable, unusable = approver_pool(path=path)
    k = path.approvals_required
    evidence = {"required": k, "usable": len(usable), "group": path.approver_group.name}
    if len(usable) < k:
        detail = "; ".join(f"{name}: {why}" for name, why in unusable) or "the group is empty"
        return (
            False,
            evidence,
            f"Path {path} needs {k} approvers but only {len(usable)} of the people in "
            f"group '{path.approver_group.name}' have an active account and a confirmed OTP "
            f"device ({detail}). A real request would wait forever.",
        )
    return True, evidence, ""


def step_notify(ctx: StepContext) -> StepResult:
    if ctx.grant is None:
        raise StepSkipped("no drill grant (the issue step did not pass)")
    source = f"breakglass.grant:{ctx.grant.pk}"
    messages = list(OutboxMessage.objects.filter(source=source, kind="drill_sink"))
    if not messages:
        return (
            False,
            {"source": source},
            "No notify-on-use message was queued for the drill grant: in a real emergency "
            "nobody would be told that the path was used.",
        )
    # Delivered here, now, through the outbox's own claim and handler: the row is held
    # back from the workers for this step (DRILLS_NOTIFY_HOLD_SECONDS), so nothing is
    # waited for. Only a run resumed late can find it taken; whoever took it delivers it.
    pending = [m.pk for m in messages if m.state == OutboxMessage.State.PENDING]
    if pending:
        outbox_deliver_many(message_ids=pending, due_only=False)
    delivered = DrillSinkDelivery.objects.filter(source=source).count()
    evidence = {"source": source, "messages": len(messages), "delivered": delivered}
    if not delivered:
        states = ", ".join(
            f"{m.state}" + (f" ({m.last_error})" if m.last_error else "")
            for m in OutboxMessage.objects.filter(source=source, kind="drill_sink")
        )
        return (
            False,
            evidence,
            f"The notify-on-use message for the drill grant was not delivered (outbox: "
            f"{states}). In a real emergency the security contacts would not hear of it.",
        )
    return True, evidence, ""


def step_reseal(ctx: StepContext) -> StepResult:
    return reseal_revoke(ctx) or reseal_check(ctx)


def reseal_revoke(ctx: StepContext) -> StepResult | None:
    """The re-seal's first half: revoke the credential (None when it is revoked, by this
    call or before it: a run resumed after a lost worker may find it so). The engine may
    run the second half later, once one bundle is published for a batch of runs."""
    if ctx.grant is None:
        raise StepSkipped("no drill grant to revoke (the issue step did not pass)")
    try:
        grant_revoke(grant=ctx.grant, actor=None, reason=f"drill re-seal (run {ctx.run.pk})")
    except GrantError as exc:
        if exc.code != "not_revocable" or not _revoked(ctx.grant):
            return False, {"jti": ctx.grant.jti}, f"Revoking the drill credential failed: {exc}."
    except Exception as exc:
        return False, {"jti": ctx.grant.jti}, f"Revoking the drill credential failed: {exc}."
    return None


def _revoked(grant) -> bool:
    return Grant.objects.filter(pk=grant.pk, state=Grant.State.REVOKED).exists()


def reseal_check(ctx: StepContext) -> StepResult:
    """The re-seal's second half: the published bundle lists the revoked credential."""
    jti = ctx.grant.jti
    try:
        trust = published_trust()
    except Exception as exc:
        return False, {"jti": jti}, f"The published trust bundle could not be read ({exc})."
    ctx.resealed_monotonic = time.monotonic()
    payload = trust.payload
    evidence = {"jti": jti, "bundle_version": payload.get("version")}
    if jti not in trust.revoked:
        return (
            False,
            evidence,
            f"The drill credential was revoked but the published bundle (version "
            f"{payload.get('version')}) does not list it: services would still accept it.",
        )
    return True, evidence, ""


def probe_request(url: str, token: str) -> tuple[int, str]:
    """GET `url` with the token as a bearer credential: (status, X-Breakglass-Error).

    One request, no redirects followed (a redirect is an answer, not acceptance), a short
    timeout, the body ignored. The URL is the path's own `probe_url`, set by the people
    who administer paths, never by a requester.
    """
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the probe URL {url!r} is not an http(s) URL")
    timeout = settings.DRILLS_PROBE_TIMEOUT_SECONDS
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", target, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status, response.getheader("X-Breakglass-Error") or ""
    finally:
        connection.close()


def _probe_target(ctx: StepContext) -> str:
    if ctx.credential is None or ctx.grant is None:
        raise StepSkipped("no drill credential to present (the issue step did not pass)")
    if ctx.path.method != "signed-token":
        raise StepSkipped("HTTP probes present tokens; this path issues SSH certificates")
    return ctx.path.probe_url


def step_http_probe(ctx: StepContext) -> StepResult:
    url = _probe_target(ctx)
    started = time.monotonic()
    try:
        status, error = probe_request(url, ctx.credential)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return (
            False,
            {"url": url, "error": type(exc).__name__},
            f"The probe target {url} could not be reached ({exc}); the drill cannot show "
            "that the real service accepts a credential.",
        )
    evidence = {"url": url, "status": status, "ms": int((time.monotonic() - started) * 1000)}
    ctx.http_probe_accepted = 200 <= status < 300
    if not ctx.http_probe_accepted:
        why = f" ({error})" if error else ""
        return (
            False,
            {**evidence, "error": error},
            f"The probe target {url} answered {status}{why} to a freshly issued drill "
            "credential: the real service would refuse it (is its verifier started with "
            "--allow-drill, for the right audience, with a current bundle?).",
        )
    return True, evidence, ""


def step_http_reseal(ctx: StepContext) -> StepResult:
    url = _probe_target(ctx)
    if ctx.resealed_monotonic is None:
        raise StepSkipped("the drill credential was not revoked (the reseal step did not pass)")
    if not ctx.http_probe_accepted:
        # A refusal proves nothing about revocation when the credential never got in.
        raise StepSkipped(
            "the probe target never accepted the credential, so there is no refusal to wait for"
        )
    deadline = ctx.resealed_monotonic + settings.DRILLS_PROBE_PROPAGATION_SECONDS
    attempts, status, error = 0, 0, ""
    while True:
        attempts += 1
        try:
            status, error = probe_request(url, ctx.credential)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            status, error = 0, type(exc).__name__
        if status in (401, 403) and error not in ("", "revoked"):
            # Refused, but not because of the revocation (e.g. expired): that proves
            # nothing about propagation.
            return (
                False,
                {"url": url, "status": status, "error": error, "attempts": attempts},
                f"The probe target {url} refused the revoked drill credential for another "
                f"reason ({error}), so the revocation's propagation could not be measured.",
            )
        if status in (401, 403):
            propagation = int((time.monotonic() - ctx.resealed_monotonic) * 1000)
            return (
                True,
                {"url": url, "status": status, "error": error, "attempts": attempts,
                 "propagation_ms": propagation},
                "",
            )  # fmt: skip
        if time.monotonic() >= deadline:
            break
        time.sleep(1)
    limit = settings.DRILLS_PROBE_PROPAGATION_SECONDS
    answer = f"answered {status}" if status else f"could not be reached ({error})"
    return (
        False,
        {"url": url, "status": status, "error": error, "attempts": attempts},
        f"{limit} s after the drill credential was revoked, the probe target {url} still "
        f"{answer} instead of refusing it: the host has not synced the new bundle (check its "
        "breakglass sync or cron job), so a revoked credential would keep working there.",
    )


# --- SSH probe: the drill certificate against the path's real sshd ---------------------


def _ssh_probe_key() -> tuple[bytes, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode("ascii") + " breakglass-drill-probe"


def ssh_probe_known_hosts() -> Path:
    """Host keys the probe has seen, first use trusted (accept-new): a host key that
    changes afterwards fails the probe loudly instead of being accepted."""
    return Path(settings.DATA_DIR) / "drills" / "ssh_known_hosts"


def ssh_probe_login(*, host: str, port: int, login: str, private_key: bytes, certificate: str):
    """One `ssh` login with the drill key and certificate, running `true`.

    Returns ("accepted" | "refused" | "unreachable" | "host_key_changed", detail). The real
    OpenSSH client with BatchMode: no prompt can hang a worker, and what it does is what a
    responder's `ssh` does.
    """
    import subprocess
    import tempfile

    known_hosts = ssh_probe_known_hosts()
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    timeout = settings.DRILLS_SSH_PROBE_TIMEOUT_SECONDS
    with tempfile.TemporaryDirectory(prefix="breakglass-probe-") as folder:
        key_file = Path(folder) / "id_ed25519"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_key)
        cert_file = Path(folder) / "id_ed25519-cert.pub"
        cert_file.write_text(certificate.strip() + "\n")
        argv = [
            "ssh", "-F", "/dev/null",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"ConnectTimeout={timeout}",
            "-i", str(key_file),
            "-o", f"CertificateFile={cert_file}",
            "-p", str(port),
            "-l", login,
            "--", host, "true",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout * 3, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            return "unreachable", "the ssh client is not installed on the worker"
        except subprocess.TimeoutExpired:
            return "unreachable", f"no answer within {timeout * 3} s"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit status {result.returncode}"
    if result.returncode == 0:
        return "accepted", ""
    if "Permission denied" in result.stderr:
        return "refused", last
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr or (
        "Host key verification failed" in result.stderr
    ):
        return "host_key_changed", last
    return "unreachable", last


def _ssh_probe_target(ctx: StepContext) -> tuple[str, int, str]:
    if ctx.credential is None or ctx.grant is None:
        raise StepSkipped("no drill certificate to present (the issue step did not pass)")
    if ctx.ssh_private_key is None:
        raise StepSkipped(
            "the drill's SSH key lived only in the worker that issued it, which is gone"
        )
    return ctx.path.probe_ssh_host, ctx.path.probe_ssh_port, ctx.path.probe_ssh_login


def _ssh_probe(ctx: StepContext, target: tuple[str, int, str]) -> tuple[str, str]:
    host, port, login = target
    return ssh_probe_login(
        host=host,
        port=port,
        login=login,
        private_key=ctx.ssh_private_key,
        certificate=ctx.credential,
    )


def step_ssh_probe(ctx: StepContext) -> StepResult:
    target = _ssh_probe_target(ctx)
    host, port, login = target
    where = f"{login}@{host}:{port}"
    started = time.monotonic()
    outcome, detail = _ssh_probe(ctx, target)
    evidence = {"target": where, "outcome": outcome, "ms": int((time.monotonic() - started) * 1000)}
    if outcome == "accepted":
        ctx.ssh_probe_accepted = True
        return True, evidence, ""
    if outcome == "refused":
        reason = (
            f"sshd at {where} refused a freshly issued drill certificate ({detail}): a "
            "responder would be refused too. Check that the host trusts this path's CA "
            "(TrustedUserCAKeys), maps its principal to the login (AuthorizedPrincipalsFile) "
            "and has a current KRL (breakglass sync)."
        )
    elif outcome == "host_key_changed":
        reason = (
            f"The host key of {where} changed since the last drill ({detail}). If that is "
            f"expected, remove its line from {ssh_probe_known_hosts()}."
        )
    else:
        reason = (
            f"The probe host {where} is unreachable ({detail}); the drill cannot show that "
            "the real sshd accepts a certificate."
        )
    return False, {**evidence, "detail": detail[:300]}, reason


def step_ssh_reseal(ctx: StepContext) -> StepResult:
    target = _ssh_probe_target(ctx)
    if ctx.resealed_monotonic is None:
        raise StepSkipped("the drill certificate was not revoked (the reseal step did not pass)")
    if not ctx.ssh_probe_accepted:
        # A refusal proves nothing about revocation when the certificate never got in.
        raise StepSkipped("the probe never logged in, so there is no refusal to wait for")
    host, port, login = target
    where = f"{login}@{host}:{port}"
    limit = settings.DRILLS_SSH_PROBE_PROPAGATION_SECONDS
    deadline = ctx.resealed_monotonic + limit
    attempts = 0
    while True:
        attempts += 1
        outcome, detail = _ssh_probe(ctx, target)
        if outcome == "refused":
            propagation = int((time.monotonic() - ctx.resealed_monotonic) * 1000)
            return (
                True,
                {"target": where, "attempts": attempts, "propagation_ms": propagation},
                "",
            )
        if time.monotonic() >= deadline:
            break
        time.sleep(1)
    still = "still accepted it" if outcome == "accepted" else f"was {outcome} ({detail})"
    return (
        False,
        {"target": where, "attempts": attempts, "outcome": outcome, "detail": detail[:300]},
        f"{limit} s after the drill certificate was revoked, sshd at {where} {still}: the "
        "host has not installed the new KRL (check its breakglass sync timer and "
        "RevokedKeys), so a revoked certificate would keep working there.",
    )


STEPS: dict[str, Callable[[StepContext], StepResult]] = {
    "dependency": step_dependency,
    "issue": step_issue,
    "verify": step_verify,
    "http_probe": step_http_probe,
    "ssh_probe": step_ssh_probe,
    "freshness": step_freshness,
    "approvers": step_approvers,
    "notify": step_notify,
    "reseal": step_reseal,
    "http_reseal": step_http_reseal,
    "ssh_reseal": step_ssh_reseal,
}


def step_run(name: str, ctx: StepContext) -> StepResult:
    return STEPS[name](ctx)
