"""In-process token verification throughput: breakglass.core vs raw Ed25519 vs PyJWT.

    .venv/bin/python bench/verify_throughput.py [--tokens 2000] [--rounds 5] [--slice 100]

All three verify the same realistic tokens (Breakglass claims, ~660 bytes) in the same
process, interleaved in slices of 100 tokens so background load hits them alike; the
median per-token time counts, in wall clock and in CPU time. "raw" is one `Ed25519PublicKey.verify` over pre-split, pre-decoded input: the
limit any verifier can reach. breakglass.core does everything else too (strict
parsing, header, issuer, audience, times, lifetime, revocation, scope). Targets: at
least 0.85x raw, faster than PyJWT.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import jwt  # PyJWT, a dev dependency, only for the comparison
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from breakglass.core import verify_bundle, verify_token
from breakglass.core.b64 import b64url_decode
from breakglass.core.jws import jws_sign
from breakglass.core.keys import key_thumbprint
from breakglass.core.signing import bundle_sign, jwk_entry, roots_document

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ISSUER = "https://breakglass.example.org"
NOW = int(time.time())


def setup(count: int):
    roots = [Ed25519PrivateKey.generate() for _ in range(3)]
    issuer = Ed25519PrivateKey.generate()
    kid = key_thumbprint(issuer)
    payload = {
        "type": "breakglass-trust-bundle",
        "version": 42,
        "issuer": ISSUER,
        "issued_at": NOW - 60,
        "expires_at": NOW + 86400,
        "max_token_lifetime": 14400,
        "keys": [
            jwk_entry(issuer, kid=kid, alg="EdDSA", not_before=NOW - 86400, not_after=NOW + 86400)
        ],
        # A realistic revocation list: a few hundred live revocations.
        "revoked_jti": [{"jti": str(uuid.uuid4()), "exp": NOW + 3600} for _ in range(300)],
        "revoked_kids": [],
    }
    document = bundle_sign(payload, [(key_thumbprint(k), k) for k in roots[:2]])
    bundle = verify_bundle(
        document, roots_document([k.public_key() for k in roots], threshold=2), now=NOW
    )
    tokens = [
        jws_sign(
            {
                "iss": ISSUER,
                "sub": f"responder-{n % 17}",
                "aud": "payments-db",
                "iat": NOW - 30,
                "nbf": NOW - 30,
                "exp": NOW + 3600,
                "jti": str(uuid.uuid4()),
                "scope": "db:read db:admin ssh:login",
                "path": "payments-db-break-glass",
                "incident": "INC-2026-0042",
                "approvers": ["alex-approver", "bea-approver"],
                "drill": False,
                "emergency": False,
            },
            private_key=issuer,
            kid=kid,
        )
        for n in range(count)
    ]
    return bundle, issuer.public_key(), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slice", type=int, default=100)
    args = parser.parse_args()
    bundle, public_key, tokens = setup(args.tokens)
    split = []
    for token in tokens:
        header, claims, signature = token.split(".")
        split.append((b64url_decode(signature), f"{header}.{claims}".encode()))

    def raw(batch):
        verify = public_key.verify
        for signature, message in batch:
            verify(signature, message)

    def breakglass(batch):
        # Every token at first sight: a bundle remembers the tokens it accepted (the
        # sidecar's case, bench/sidecar.py), and this measures the full verification.
        bundle.verified_tokens.clear()
        for token in batch:
            verify_token(token, bundle, audience="payments-db", scope="db:admin", now=NOW)

    def pyjwt(batch):
        for token in batch:
            jwt.decode(
                token,
                key=public_key,
                algorithms=["EdDSA"],
                audience="payments-db",
                issuer=ISSUER,
                options={"require": ["exp", "iat", "nbf", "jti"]},
            )

    contenders = {
        "raw Ed25519 (cryptography)": (raw, split),
        "breakglass.core": (breakglass, tokens),
        "PyJWT": (pyjwt, tokens),
    }
    for run, inputs in contenders.values():  # warm up and prove each one accepts the tokens
        run(inputs)
    # Interleave in small slices so a burst of background load hits all three alike, and
    # count both wall-clock and CPU time (the latter ignores time spent preempted).
    wall = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    step = args.slice
    for _ in range(args.rounds):
        for start in range(0, len(tokens), step):
            for name, (run, inputs) in contenders.items():
                batch = inputs[start : start + step]
                wall_start, cpu_start = time.perf_counter(), time.process_time()
                run(batch)
                cpu[name].append((time.process_time() - cpu_start) / len(batch))
                wall[name].append((time.perf_counter() - wall_start) / len(batch))

    print(
        f"{len(tokens)} tokens ({len(tokens[0])} bytes) x {args.rounds} rounds, "
        f"interleaved in slices of {step}; median per-token time"
    )
    print(f"  {'':28} {'wall clock':>14} {'CPU time':>14}")
    rates = {}
    for name in contenders:
        rates[name] = (1 / statistics.median(wall[name]), 1 / statistics.median(cpu[name]))
        print(f"  {name:28} {rates[name][0]:10,.0f} /s  {rates[name][1]:10,.0f} /s")
    raw_rate, ours, pyjwt_rate = rates.values()
    for index, label in ((0, "wall clock"), (1, "CPU time")):
        print(
            f"{label:>10}: breakglass / raw Ed25519 = {ours[index] / raw_rate[index]:.3f}x "
            f"(target >= 0.85x); breakglass / PyJWT = {ours[index] / pyjwt_rate[index]:.2f}x "
            "(target > 1x)"
        )
    from bench.common import summary_line

    print(
        summary_line(
            "verify_throughput",
            ours[0] / raw_rate[0],
            "raw Ed25519 verify (wall clock)",
            target=">= 0.85x",
        )
    )


if __name__ == "__main__":
    main()
