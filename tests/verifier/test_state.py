"""The state directory: anti-rollback across runs and single use across processes."""

import multiprocessing
import os

import pytest

from breakglass.core import (
    ConflictingBundle,
    ReplayedToken,
    StaleBundle,
    StateError,
    VerificationError,
    WrongAudience,
    verify_bundle,
    verify_token,
)
from devkit import keykit as kit


def test_a_rolled_back_bundle_is_refused_once_a_newer_one_was_seen(tmp_path):
    verify_bundle(kit.bundle(version=8), kit.roots(), now=kit.NOW, state_dir=tmp_path)
    with pytest.raises(StaleBundle, match="rollback"):
        verify_bundle(kit.bundle(version=7), kit.roots(), now=kit.NOW, state_dir=tmp_path)
    # Seeing the same bundle again, or a newer one, is fine.
    verify_bundle(kit.bundle(version=8), kit.roots(), now=kit.NOW, state_dir=tmp_path)
    verify_bundle(kit.bundle(version=9), kit.roots(), now=kit.NOW, state_dir=tmp_path)


def test_two_different_bundles_with_one_version_number_are_refused(tmp_path):
    verify_bundle(kit.bundle(version=8), kit.roots(), now=kit.NOW, state_dir=tmp_path)
    with pytest.raises(ConflictingBundle):
        verify_bundle(
            kit.bundle(version=8, revoked_jti=[]), kit.roots(), now=kit.NOW, state_dir=tmp_path
        )


def test_a_single_use_token_is_accepted_once(bundle, tmp_path):
    token = kit.token()
    verify_token(token, bundle, audience="sso", now=kit.NOW, state_dir=tmp_path)
    with pytest.raises(ReplayedToken, match="once"):
        verify_token(token, bundle, audience="sso", now=kit.NOW, state_dir=tmp_path)


def test_max_uses_allows_exactly_that_many_uses(bundle, tmp_path):
    token = kit.token()
    for _ in range(3):
        verify_token(token, bundle, audience="sso", now=kit.NOW, state_dir=tmp_path, max_uses=3)
    with pytest.raises(ReplayedToken, match="3 times"):
        verify_token(token, bundle, audience="sso", now=kit.NOW, state_dir=tmp_path, max_uses=3)


def test_a_refused_token_does_not_consume_a_use(bundle, tmp_path):
    with pytest.raises(WrongAudience):
        verify_token(kit.token(), bundle, audience="vpn", now=kit.NOW, state_dir=tmp_path)
    verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=tmp_path)


def test_expired_entries_are_pruned(bundle, tmp_path):
    verify_token(
        kit.token(exp=kit.NOW + 120), bundle, audience="sso", now=kit.NOW, state_dir=tmp_path
    )
    later = kit.NOW + 600
    verify_token(
        kit.token(jti="second", iat=later, nbf=later, exp=later + 60),
        bundle,
        audience="sso",
        now=later,
        state_dir=tmp_path,
    )
    assert b"4f1c2a9e" not in (tmp_path / "replay.json").read_bytes()


def test_a_corrupt_state_file_fails_closed(bundle, tmp_path):
    (tmp_path / "replay.json").write_bytes(b"{not json")
    with pytest.raises(StateError, match="corrupt"):
        verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=tmp_path)


def test_an_unusable_state_directory_fails_closed(bundle, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError):
        verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=blocker / "x")


def _race(state_dir, barrier, results):
    bundle = verify_bundle(kit.bundle(), kit.roots(), now=kit.NOW)
    barrier.wait()
    try:
        verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=state_dir)
        results.put("accept")
    except VerificationError as exc:
        results.put(exc.code)


def test_concurrent_processes_accept_a_single_use_token_exactly_once(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = 8
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=_race, args=(str(tmp_path), barrier, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=30) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    assert outcomes == ["accept"] + ["replayed"] * (workers - 1)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777, 0o1777])
def test_a_group_or_world_writable_state_directory_is_refused(bundle, tmp_path, mode):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(mode)
    with pytest.raises(StateError, match="group- or world-writable .*chmod 0700"):
        verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=state)
    assert list(state.iterdir()) == []  # nothing written, nothing consumed


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_state_directory_owned_by_someone_else_is_refused(bundle, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)  # nobody: the account the verifier's users could be
    with pytest.raises(StateError, match="owned by uid 65534, not by root"):
        verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=state)


def test_a_symlinked_state_directory_is_refused(bundle, tmp_path):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "state").symlink_to(tmp_path / "real")
    with pytest.raises(StateError, match="is a symlink"):
        verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=tmp_path / "state")


def test_a_missing_state_directory_is_created_private(bundle, tmp_path):
    state = tmp_path / "state"
    verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=state)
    assert state.stat().st_mode & 0o777 == 0o700


def test_state_files_planted_as_symlinks_are_not_followed(bundle, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    (state / "replay.json").symlink_to(elsewhere)
    with pytest.raises(StateError, match="cannot read"):
        verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=state)
    assert elsewhere.read_text() == "{}"
    (state / "replay.json").unlink()
    (state / "lock").unlink()
    (state / "lock").symlink_to(tmp_path / "lock-elsewhere")
    with pytest.raises(StateError):
        verify_token(kit.token(), bundle, audience="sso", now=kit.NOW, state_dir=state)
    assert not (tmp_path / "lock-elsewhere").exists()
