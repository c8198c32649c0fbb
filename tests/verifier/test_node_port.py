"""The Node.js port (docs/integrations/other-languages.md) agrees with every golden vector,
run by the real `node` with nothing installed beyond it."""

import json
import subprocess
from pathlib import Path

from tests.integrations.hosts import require_program
from tests.verifier.vectors import generate

PORT = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "node" / "verify.mjs"


def test_the_node_port_reaches_the_same_decision_on_every_golden_vector(tmp_path):
    node = require_program("/usr/bin/node", "nodejs")
    vectors = json.loads(Path(generate.OUTPUT).read_text(encoding="utf-8"))
    total = len(vectors["bundle_cases"]) + len(vectors["token_cases"])
    result = subprocess.run(
        [node, str(PORT), "--vectors", generate.OUTPUT],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no node_modules anywhere near: the port needs none
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{total}/{total} golden vectors agree" in result.stdout
    assert any(c["expected"] == "drill_not_allowed" for c in vectors["token_cases"])
