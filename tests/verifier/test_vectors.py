"""The golden vectors: committed, reproducible, and this implementation agrees with each."""

import json
from pathlib import Path

import pytest

from breakglass.core import VerificationError, verify_bundle, verify_token
from tests.verifier.vectors import generate

VECTORS = json.loads(Path(generate.OUTPUT).read_text(encoding="utf-8"))


def decide(call) -> str:
    try:
        call()
    except VerificationError as exc:
        return exc.code
    return "accept"


def test_the_committed_vectors_are_exactly_what_the_generator_produces():
    assert Path(generate.OUTPUT).read_text(encoding="utf-8") == generate.render(), (
        "run: .venv/bin/python -m tests.verifier.vectors.generate"
    )


def test_the_vectors_cover_acceptance_and_every_known_attack():
    expected = {case["expected"] for case in VECTORS["token_cases"] + VECTORS["bundle_cases"]}
    assert {
        "accept", "bad_algorithm", "bad_header", "bad_signature", "insufficient_signatures",
        "stale_bundle", "key_not_valid", "wrong_audience", "revoked", "expired",
        "not_yet_valid", "malformed_token", "revoked_key", "drill_not_allowed",
        "expired_bundle", "beyond_kit_policy", "retired_kit",
    } <= expected  # fmt: skip


@pytest.mark.parametrize("case", VECTORS["bundle_cases"], ids=lambda case: case["name"])
def test_bundle_vector(case):
    bundle = VECTORS["bundles"][case["bundle"]].encode()
    decision = decide(
        lambda: verify_bundle(
            bundle,
            VECTORS["roots"].encode(),
            now=case["now"],
            leeway=case["leeway"],
            min_version=case["min_version"],
            allow_expired=case["allow_expired"],
        )
    )
    assert decision == case["expected"]


@pytest.mark.parametrize("case", VECTORS["token_cases"], ids=lambda case: case["name"])
def test_token_vector(case):
    bundle = verify_bundle(
        VECTORS["bundles"][case["bundle"]].encode(),
        VECTORS["roots"].encode(),
        now=case["now"],
        allow_expired=case["allow_expired"],
    )
    decision = decide(
        lambda: verify_token(
            case["token"],
            bundle,
            audience=case["audience"],
            scope=case["scope"],
            now=case["now"],
            leeway=case["leeway"],
            allow_drill=case["allow_drill"],
        )
    )
    assert decision == case["expected"]
