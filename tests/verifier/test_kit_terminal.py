"""Shares typed at a real terminal (a pseudo-terminal): never echoed, and a refused share
is asked for again rather than ending the run."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

from tests.verifier.sealed import make_kit

ROOT = Path(__file__).resolve().parents[2]


def converse(args: list[str], answers: list[str], *, timeout: float = 60) -> tuple[int, str]:
    """Run the CLI on a pty; answer each hidden prompt in turn; return (exit code, screen)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, with the pty as its terminal
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "breakglass.core", *args])
    screen, pending, sent = b"", list(answers), 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child exited and closed the terminal
            break
        if not chunk:
            break
        screen += chunk
        # Answer each prompt once it is on screen: getpass flushes typed-ahead input.
        prompts = screen.count(b"(words, not shown):")
        if pending and prompts > sent and screen.rstrip().endswith(b"(words, not shown):"):
            os.write(fd, pending.pop(0).encode() + b"\r")
            sent += 1
    reaped, status = os.waitpid(pid, os.WNOHANG)
    if reaped == 0:  # still waiting at a prompt: kill it and fail below rather than hang
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def test_a_share_typed_at_a_terminal_is_not_echoed_and_a_typo_is_asked_again(tmp_path):
    document, shares = make_kit("kit-tty", now=int(time.time()))
    kit_file = tmp_path / "kit.json"
    kit_file.write_text(json.dumps(document))
    typo = shares[1].replace(" ", " x", 1)
    code, screen = converse(["kit", "check", "--kit-file", str(kit_file)], [typo, shares[1]])
    assert code == 0, screen
    assert "share 1: word 2 is not a SLIP-39 word" in screen  # the typo, then asked again
    assert screen.count("Your share (words, not shown):") == 2
    assert "share OK: Bob's share of kit kit-tty" in screen
    words = shares[1].split()
    assert " ".join(words[4:8]) not in screen and " ".join(words[20:24]) not in screen
