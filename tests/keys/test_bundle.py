import json
import threading
from datetime import timedelta

import pytest
import time_machine
from cryptography.exceptions import InvalidSignature
from django.db import connection
from django.utils import timezone

from breakglass.core.b64 import b64url_decode
from breakglass.core.bundle import verify_bundle
from breakglass.core.canonical import canonical_json
from breakglass.core.errors import BadSignature, InsufficientSignatures, MalformedRoots
from breakglass.core.keys import public_from_x
from breakglass.core.signing import bundle_sign
from breakglass.keys import selectors, services
from breakglass.keys.models import SigningKey, TrustBundle


def test_bootstrap_is_idempotent(trust):
    services.keys_bootstrap()
    assert SigningKey.objects.filter(purpose=SigningKey.Purpose.ROOT).count() == 3
    assert SigningKey.objects.filter(purpose=SigningKey.Purpose.ISSUER).count() == 1
    assert TrustBundle.objects.count() == 1


def test_bootstrap_refuses_a_threshold_the_roots_cannot_meet(db, settings):
    settings.BREAKGLASS_ROOT_THRESHOLD = 3
    with pytest.raises(ValueError, match="cannot meet a threshold of 3"):
        services.keys_bootstrap(root_count=2)
    assert not SigningKey.objects.exists()


def test_bundle_is_signed_by_threshold_distinct_roots_checked_with_cryptography(trust):
    document = selectors.bundle_current()
    roots = {entry["kid"]: public_from_x(entry["x"]) for entry in selectors.roots_export()["keys"]}
    message = canonical_json(document["payload"])
    signers = set()
    for signature in document["signatures"]:
        roots[signature["kid"]].verify(b64url_decode(signature["sig"]), message)
        signers.add(signature["kid"])
    assert len(signers) == 2
    assert selectors.roots_export()["threshold"] == 2


def test_tampered_payload_fails_the_signature_check(trust):
    document = selectors.bundle_current()
    document["payload"]["revoked_jti"] = []
    document["payload"]["version"] += 1
    with pytest.raises(BadSignature, match="does not verify over the payload"):
        verify_bundle(document, selectors.roots_export())
    roots = {e["kid"]: public_from_x(e["x"]) for e in selectors.roots_export()["keys"]}
    sig = document["signatures"][0]
    with pytest.raises(InvalidSignature):
        roots[sig["kid"]].verify(b64url_decode(sig["sig"]), canonical_json(document["payload"]))


def test_one_root_signing_twice_counts_once(trust):
    document = selectors.bundle_current()
    document["signatures"] = [document["signatures"][0]] * 2
    with pytest.raises(InsufficientSignatures, match="signed by 1 distinct root key"):
        verify_bundle(document, selectors.roots_export())


def test_payload_has_the_documented_shape(trust, settings):
    payload = selectors.bundle_current()["payload"]
    # audit_head is absent here: bootstrap signs before any event has joined the chain.
    assert set(payload) == {
        "type", "version", "issuer", "issued_at", "expires_at", "max_token_lifetime",
        "keys", "revoked_jti", "revoked_kids", "ssh", "kits",
    }  # fmt: skip
    assert payload["type"] == "breakglass-trust-bundle"
    assert payload["expires_at"] - payload["issued_at"] == 24 * 3600
    assert payload["max_token_lifetime"] == settings.BREAKGLASS_MAX_TOKEN_LIFETIME_MINUTES * 60
    assert set(payload["keys"][0]) == {"kid", "kty", "crv", "alg", "x", "not_before", "not_after"}


def test_versions_only_go_up(trust):
    versions = [services.bundle_publish(reason="test").version for _ in range(3)]
    assert versions == [2, 3, 4]


def test_revocation_appears_in_the_next_bundle_and_drops_out_after_expiry(
    trust, django_capture_on_commit_callbacks
):
    expires = timezone.now() + timedelta(minutes=30)
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_revoke(jti="tok-1", expires_at=expires, reason="laptop stolen")
    published = json.loads(selectors.published_bundle_path().read_text())
    assert published["payload"]["version"] == 2
    assert published["payload"]["revoked_jti"] == [
        {"jti": "tok-1", "exp": int(expires.timestamp())}
    ]
    with time_machine.travel(expires + timedelta(seconds=1)):
        services.bundle_publish(reason="later")
        assert selectors.bundle_current()["payload"]["revoked_jti"] == []


def test_revoking_twice_publishes_once(trust, django_capture_on_commit_callbacks):
    expires = timezone.now() + timedelta(minutes=30)
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_revoke(jti="tok-1", expires_at=expires, reason="r")
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_revoke(jti="tok-1", expires_at=expires, reason="r")
    assert selectors.bundle_latest().version == 2


def test_revoking_an_expired_token_needs_no_new_bundle(trust, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_revoke(
            jti="old", expires_at=timezone.now() - timedelta(minutes=1), reason="r"
        )
    assert selectors.bundle_latest().version == 1


def test_key_revocation_is_listed_and_rotates_the_signing_key(trust):
    old = selectors.issuer_key_signing()
    services.key_revoke(kid=old.kid, reason="leaked")
    payload = selectors.bundle_current()["payload"]
    assert payload["revoked_kids"] == [old.kid]
    assert old.kid not in [k["kid"] for k in payload["keys"]]
    assert selectors.issuer_key_signing().kid != old.kid


def test_root_keys_cannot_be_revoked_like_issuer_keys(trust):
    root = SigningKey.objects.filter(purpose=SigningKey.Purpose.ROOT).first()
    with pytest.raises(ValueError, match="re-pinning"):
        services.key_revoke(kid=root.kid, reason="x")


def test_retiring_the_active_issuer_key_is_refused(trust):
    with pytest.raises(ValueError, match="rotate the issuer key first"):
        services.key_retire(kid=selectors.issuer_key_signing().kid)


def test_retired_key_leaves_the_bundle(trust):
    old = selectors.issuer_key_signing()
    services.issuer_key_rotate()
    services.key_retire(kid=old.kid)
    assert old.kid not in [k["kid"] for k in selectors.bundle_current()["payload"]["keys"]]


def test_published_files_hold_the_latest_bundle_and_the_roots(
    trust, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.bundle_publish(reason="a")
    assert json.loads(selectors.published_bundle_path().read_text())["payload"]["version"] == 2
    assert json.loads(selectors.published_roots_path().read_text()) == selectors.roots_export()
    leftovers = [p.name for p in selectors.published_bundle_path().parent.iterdir()]
    assert sorted(leftovers) == [".publish.lock", "bundle.json", "roots.json"]


def test_a_late_writer_never_puts_an_older_bundle_back_on_disk(
    trust, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True):
        services.bundle_publish(reason="a")
    path = selectors.published_bundle_path()
    newer = json.loads(path.read_text())
    newer["payload"]["version"] = 99  # as if another writer had already published past us
    path.write_text(json.dumps(newer))

    services.trust_files_write()

    assert json.loads(path.read_text())["payload"]["version"] == 99
    assert "not publishing bundle version 2 over version 99" in caplog.text


def test_every_change_is_audited(trust, django_capture_on_commit_callbacks):
    from breakglass.audit.models import AuditEvent

    with django_capture_on_commit_callbacks(execute=True):
        services.credential_revoke(
            jti="x", expires_at=timezone.now() + timedelta(hours=1), reason="r"
        )
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions.count("keys.root_created") == 3
    assert "keys.issuer_created" in actions
    assert actions[-2:] == ["token.revoked", "bundle.published"]


def test_refresh_republishes_only_within_the_margin(trust, settings):
    settings.BREAKGLASS_BUNDLE_REFRESH_MARGIN_HOURS = 8
    assert services.bundle_refresh() is None
    latest = selectors.bundle_latest()
    with time_machine.travel(latest.expires_at - timedelta(hours=7)):
        assert services.bundle_refresh().version == 2


def test_refresh_task_is_scheduled_every_fifteen_minutes(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="breakglass.keys.tasks.bundle_refresh")
    assert task.interval.every == 900


def test_refresh_task_publishes_when_there_is_no_bundle(db, settings):
    from breakglass.keys.tasks import bundle_refresh

    services.keys_bootstrap()
    TrustBundle.objects.all().delete()
    assert bundle_refresh.apply().get() == 1


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_concurrent_publishers_never_reuse_a_version(settings, tmp_path):
    services.keys_bootstrap()
    errors = []

    def publish():
        try:
            for _ in range(3):
                services.bundle_publish(reason="race")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=publish) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(TrustBundle.objects.order_by("version").values_list("version", flat=True)) == list(
        range(1, 11)
    )


def test_a_roots_file_listing_one_key_twice_is_refused(trust):
    roots = selectors.roots_export()
    roots["keys"].append(roots["keys"][0])
    with pytest.raises(MalformedRoots, match="listed twice"):
        verify_bundle(selectors.bundle_current(), roots)


def test_bundle_import_refuses_one_root_key_pinned_under_two_ids(trust):
    """One key stored twice (say, imported again under another name) must not let one
    holder's signature count as two: bundle_import runs the verifier's own check."""
    root = selectors.root_keys_active()[0]
    now = timezone.now()
    alias = SigningKey.objects.create(
        purpose=SigningKey.Purpose.ROOT,
        kid="alias-of-" + root.kid[:16],
        name="the same key again",
        public_key=root.public_key,
        private_key_encrypted=b"",
        not_before=now,
        not_after=now + timedelta(days=1),
    )
    private = services._key_private(root)
    document = bundle_sign(services.bundle_payload_build(), [(root.kid, private)] * 2)
    with pytest.raises(services.BundleImportError, match="listed twice"):
        services.bundle_import(document=document)
    alias.delete()
    with pytest.raises(services.BundleImportError, match="signed by 1 distinct root key"):
        services.bundle_import(document=document)
    assert TrustBundle.objects.count() == 1


def test_bundle_import_refuses_what_verifiers_refuse(trust):
    """The server publishes nothing its verifiers would reject, e.g. a bundle issued in
    the future (a clock-skewed signing machine)."""
    payload = services.bundle_payload_build()
    payload["issued_at"] += 3600
    signers = services._server_signers()
    with pytest.raises(services.BundleImportError, match="in the future"):
        services.bundle_import(document=bundle_sign(payload, signers))
    assert TrustBundle.objects.count() == 1
