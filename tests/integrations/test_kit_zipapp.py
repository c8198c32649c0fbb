"""The single-file verifier on a host (Debian's python3, no shamir-mnemonic): it accepts kit
tokens, and its kit commands say plainly that minting needs the full install."""

from __future__ import annotations

import json
import subprocess
import time

from tests.verifier.sealed import make_kit


def test_the_zipapp_refuses_kit_commands_with_one_clear_line(verifier_command, tmp_path):
    document, shares = make_kit("kit-host", now=int(time.time()))
    (tmp_path / "kit.json").write_text(json.dumps(document))
    result = subprocess.run(
        [*verifier_command, "kit", "check", "--kit-file", str(tmp_path / "kit.json")],
        input=shares[0] + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "breakglass kit: this needs the shamir-mnemonic package "
        "(pip install breakglass, or pip install shamir-mnemonic)"
    )
