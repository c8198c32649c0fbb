"""The Node.js port (docs/integrations/node/verify.mjs) under Debian's node and its `jose`
package (apt-get install nodejs node-jose) reaches the same decision as this verifier on
every golden vector, sealed-kit tokens included."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.integrations.hosts import INTEGRATION_DOCS, REPOSITORY, require_program

DEBIAN_JOSE = Path("/usr/share/nodejs/jose")


def test_the_node_port_agrees_with_every_golden_vector(tmp_path):
    node = require_program("/usr/bin/node", "nodejs")
    require_program(str(DEBIAN_JOSE), "node-jose")
    # `import 'jose'` resolves through node_modules beside the script, as after `npm install jose`.
    (tmp_path / "node_modules").mkdir()
    os.symlink(DEBIAN_JOSE, tmp_path / "node_modules" / "jose")
    script = tmp_path / "verify.mjs"
    script.write_bytes((INTEGRATION_DOCS / "node" / "verify.mjs").read_bytes())
    vectors = REPOSITORY / "tests" / "verifier" / "vectors" / "vectors.json"
    result = subprocess.run(
        [node, str(script), "--vectors", str(vectors)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    agreed, total = result.stdout.strip().splitlines()[-1].split()[0].split("/")
    assert agreed == total and int(total) >= 75
