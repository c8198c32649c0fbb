"""The `breakglass` console script: exit 0 accept, 1 reject (with reason), 2 usage/unreadable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from breakglass.core.cli import main
from devkit import keykit as kit

SCRIPT = Path(sys.executable).parent / "breakglass"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "bundle.json").write_bytes(kit.dumps(kit.bundle()))
    (tmp_path / "roots.json").write_bytes(kit.dumps(kit.roots()))
    return tmp_path


def verify_args(files, *extra, audience="sso"):
    return [
        "verify",
        "--bundle", str(files / "bundle.json"),
        "--roots", str(files / "roots.json"),
        "--audience", audience,
        "--now", str(kit.NOW),
        *extra,
    ]  # fmt: skip


def run(argv, capsys):
    code = main(argv)
    output = capsys.readouterr()
    assert "Traceback" not in output.out + output.err
    return code, output.out, output.err


# --- As installed: a few real processes --------------------------------------------------


def test_the_installed_script_accepts_a_valid_token_and_prints_its_claims(files):
    result = subprocess.run(
        [str(SCRIPT), *verify_args(files, "--scope", "admin", kit.token())],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "ACCEPT token for sso" in result.stdout
    assert '"rita-responder"' in result.stdout


def test_the_installed_script_reads_the_token_from_stdin_and_answers_in_json(files):
    tampered = kit.token()[:-3] + "AAA"
    result = subprocess.run(
        [str(SCRIPT), *verify_args(files, "--json", "-")],
        input=tampered + "\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    answer = json.loads(result.stdout)
    assert answer["decision"] == "reject"
    assert answer["error"] == "bad_signature"


def test_the_installed_script_exits_2_on_an_unreadable_file(tmp_path):
    result = subprocess.run(
        [str(SCRIPT), "bundle", "verify", "--roots", str(tmp_path / "missing.json"), "x.json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "cannot read roots file" in result.stderr
    assert "Traceback" not in result.stderr


def test_binary_garbage_on_the_command_line_is_a_rejection_not_a_traceback(files):
    argv = [os.fsencode(arg) for arg in [str(SCRIPT), *verify_args(files)]]
    result = subprocess.run([*argv, b"\xff\xfe\x80.\xc3(.\x01"], capture_output=True)
    assert result.returncode == 1
    assert result.stderr.startswith(b"REJECT malformed_token")
    assert b"Traceback" not in result.stderr


def test_python_dash_m_runs_the_same_cli(files):
    result = subprocess.run(
        [sys.executable, "-m", "breakglass.core", "bundle", "verify", "--roots",
         str(files / "roots.json"), "--now", str(kit.NOW), str(files / "bundle.json")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ACCEPT bundle version 7" in result.stdout


def test_concurrent_cli_runs_accept_a_single_use_token_once(files):
    token = kit.token()
    argv = [str(SCRIPT), *verify_args(files, "--state", str(files / "state"), token)]
    processes = [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(6)
    ]
    codes = sorted(process.wait(timeout=60) for process in processes)
    assert codes == [0, 1, 1, 1, 1, 1]
    assert all(b"replayed" in process.stderr.read() for process in processes if process.returncode)


# --- In process: the decision table --------------------------------------------------------


@pytest.mark.parametrize(
    "token, audience, scope, code, reason",
    [
        (kit.token(), "vpn", None, 1, "wrong_audience"),
        (kit.token(jti="revoked-jti-0001"), "sso", None, 1, "revoked"),
        (
            kit.token(exp=kit.NOW - 61, iat=kit.NOW - 600, nbf=kit.NOW - 600),
            "sso",
            None,
            1,
            "expired",
        ),
        (kit.token(), "sso", "root", 1, "missing_scope"),
        (kit.token(key=kit.ATTACKER_KEY), "sso", None, 1, "unknown_key"),
        ("not-a-token", "sso", None, 1, "malformed_token"),
        (kit.token(), "sso", "admin", 0, None),
    ],
)
def test_each_decision_has_its_exit_code_and_reason(
    files, capsys, token, audience, scope, code, reason
):
    extra = ["--scope", scope] if scope else []
    exit_code, out, err = run(
        verify_args(files, *extra, "--json", token, audience=audience), capsys
    )
    answer = json.loads(out)
    assert exit_code == code
    assert answer["decision"] == ("accept" if code == 0 else "reject")
    assert answer.get("error") == reason
    if reason:
        assert answer["message"]


def test_a_rejection_in_text_mode_names_the_reason_on_stderr(files, capsys):
    code, out, err = run(verify_args(files, kit.token(aud="vpn")), capsys)
    assert code == 1
    assert out == ""
    assert err.startswith("REJECT wrong_audience: token is for 'vpn', not for 'sso'")


def test_a_rolled_back_bundle_is_refused_with_state(files, capsys):
    newer = files / "newer.json"
    newer.write_bytes(kit.dumps(kit.bundle(version=8)))
    state = str(files / "state")
    roots = str(files / "roots.json")
    now = str(kit.NOW)
    assert (
        run(
            ["bundle", "verify", "--roots", roots, "--state", state, "--now", now, str(newer)],
            capsys,
        )[0]
        == 0
    )
    code, out, _ = run(
        [
            "bundle",
            "verify",
            "--roots",
            roots,
            "--state",
            state,
            "--now",
            now,
            "--json",
            str(files / "bundle.json"),
        ],
        capsys,
    )
    assert code == 1
    assert json.loads(out)["error"] == "stale_bundle"


def test_a_bundle_signed_twice_by_one_root_is_refused(files, capsys):
    (files / "bundle.json").write_bytes(kit.dumps(kit.bundle(signers=[kit.ROOT_KEYS[0]] * 2)))
    code, _, err = run(verify_args(files, kit.token()), capsys)
    assert code == 1
    assert "insufficient_signatures" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "usage"),
        (["sign"], "unknown command"),
        (["bundle", "list"], "bundle verify"),
        (["verify", "--bundle", "b"], "missing --roots, --audience"),
        (["verify", "--bundle", "b", "--roots", "r", "--audience", "s"], "exactly one TOKEN"),
        (
            ["verify", "--bundle", "b", "--roots", "r", "--audience", "s", "t1", "t2"],
            "exactly one TOKEN",
        ),
        (
            ["verify", "--bundle", "b", "--roots", "r", "--audience", "s", "--leeway", "-5", "t"],
            "whole number",
        ),
        (
            ["verify", "--bundle", "b", "--roots", "r", "--audience", "s", "--leeway", "x", "t"],
            "whole number",
        ),
        (
            ["verify", "--bundle", "b", "--roots", "r", "--audience", "s", "--max-uses", "2", "t"],
            "needs --state",
        ),
        (
            ["verify", "--bundle", "b", "--bundle", "c", "--roots", "r", "--audience", "s", "t"],
            "twice",
        ),
        (["verify", "--bogus", "t"], "unknown option"),
        (["verify", "--roots"], "needs a value"),
        (["verify", "--bundle", "-", "--roots", "r", "--audience", "s", "-"], "only one of"),
    ],
)
def test_usage_errors_exit_2_with_a_message(argv, message, capsys, tmp_path):
    code, out, err = run(argv, capsys)
    if argv:
        assert code == 2
        assert message in err
    else:
        assert code == 0 and message in out  # bare `breakglass` prints the usage


def test_help_prints_the_usage_and_exits_0(capsys):
    code, out, _ = run(["verify", "--help"], capsys)
    assert code == 0
    assert "exit status: 0 accepted, 1 rejected" in out


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff\xfe garbage \x80",
        b'{"payload": {"version": 1',
        b"[" * 200000,
        b'{"payload": [], "signatures": {}}',
        b'{"payload": {"version": "7"}, "signatures": [{"kid": 1, "alg": null, "sig": []}]}',
        b"1e999999",
        b'"' + b"a" * 1000 + b'"',
        b"9" * 100000,
    ],
)
def test_broken_bundle_files_are_refused_without_a_traceback(files, capsys, content):
    (files / "bundle.json").write_bytes(content)
    code, out, err = run(verify_args(files, "--json", kit.token()), capsys)
    assert code == 1
    assert json.loads(out)["error"] == "malformed_bundle"


def test_a_huge_bundle_file_is_refused_before_parsing(files, capsys):
    (files / "bundle.json").write_bytes(b" " * (8 * 1024 * 1024 + 1))
    code, _, err = run(verify_args(files, kit.token()), capsys)
    assert code == 2
    assert "larger than" in err


@pytest.mark.parametrize(
    "content",
    [b"\xff", b"{}", b"[" * 100000, b'{"type":"breakglass-roots","threshold":true,"keys":[]}'],
)
def test_a_broken_roots_file_is_a_configuration_error(files, capsys, content):
    (files / "roots.json").write_bytes(content)
    code, out, _ = run(verify_args(files, "--json", kit.token()), capsys)
    assert code == 2
    assert json.loads(out)["error"] == "malformed_roots"


def test_a_directory_given_as_a_file_is_unreadable(files, capsys):
    code, _, err = run(
        ["bundle", "verify", "--roots", str(files), str(files / "bundle.json")], capsys
    )
    assert code == 2
    assert "cannot read roots file" in err


def test_a_huge_token_on_stdin_is_refused(files, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"e" * 10_000_000)))
    code, _, err = run(verify_args(files, "-"), capsys)
    assert code == 2
    assert "larger than" in err


def test_an_unusable_state_directory_exits_2(files, capsys):
    (files / "blocker").write_text("")
    code, _, err = run(
        verify_args(files, "--state", str(files / "blocker" / "state"), kit.token()), capsys
    )
    assert code == 2
    assert "state directory" in err


def test_an_unexpected_internal_failure_is_reported_not_raised(files, capsys, monkeypatch):
    import breakglass.core

    def explode(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(breakglass.core, "verify_bundle", explode)
    code, out, _ = run(verify_args(files, "--json", kit.token()), capsys)
    assert code == 2
    assert json.loads(out) == {
        "decision": "error",
        "error": "internal",
        "message": "internal error (ZeroDivisionError); input refused",
    }


def test_a_drill_token_is_refused_without_allow_drill(files, capsys):
    drill = kit.token(drill=True)
    code, _, err = run(verify_args(files, drill), capsys)
    assert (code, err.split(":")[0]) == (1, "REJECT drill_not_allowed")
    code, out, _ = run(verify_args(files, "--allow-drill", drill), capsys)
    assert code == 0 and "  drill: true" in out
    code, _, err = run(verify_args(files, "--allow-drill=yes", drill), capsys)
    assert code == 2 and "--allow-drill takes no value" in err


# --- At a terminal ------------------------------------------------------------------------


def _on_a_terminal(argv: list[str]):
    """Start the installed script with a pseudo-terminal as its standard input (a person
    at a keyboard); stdout and stderr are pipes we read."""
    import pty

    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [str(SCRIPT), *argv], stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    os.close(terminal)
    return proc, controller


def _read_until(stream, text: bytes, timeout: float = 30) -> bytes:
    import select
    import time

    seen, deadline = b"", time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 1)
        if ready:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    return seen


def test_verify_dash_at_a_terminal_says_it_waits_for_the_token_then_reads_one_line(files):
    proc, controller = _on_a_terminal(verify_args(files, "-"))
    try:
        prompt = _read_until(proc.stderr, b"Enter")
        assert prompt.decode() == "Paste the token and press Enter (Ctrl-C to give up):\n"
        os.write(controller, kit.token().encode() + b"\n")  # Enter, no Ctrl-D
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(controller)
    assert proc.returncode == 0, err
    assert b"ACCEPT token for sso" in out


def test_verify_dash_from_a_pipe_prints_no_prompt(files):
    """pam_exec and scripts pipe the token: their stderr carries only the decision."""
    result = subprocess.run(
        [str(SCRIPT), *verify_args(files, "-")],
        input=kit.token() + "\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_bundle_read_from_a_terminal_is_asked_for(files):
    argv = verify_args(files, kit.token())
    argv[argv.index("--bundle") + 1] = "-"
    proc, controller = _on_a_terminal(argv)
    try:
        prompt = _read_until(proc.stderr, b"Ctrl-D:")
        os.write(controller, kit.dumps(kit.bundle()) + b"\n\x04")  # paste, Enter, Ctrl-D
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(controller)
    assert prompt.decode() == "Paste the bundle, then press Enter and Ctrl-D:\n"
    assert proc.returncode == 0, err
    assert b"ACCEPT token for sso" in out
