"""Property-based hardening: mutate valid tokens and bundles; nothing else may be accepted,
and nothing but a `VerificationError` may ever escape."""

import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from breakglass.core import VerificationError, verify_bundle, verify_token
from breakglass.core.b64 import b64url_encode
from breakglass.core.canonical import canonical_json
from breakglass.core.cli import main
from devkit import keykit as kit

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKEN = kit.token()
BUNDLE_RAW = kit.dumps(kit.bundle())
ROOTS = kit.roots()
BUNDLE = verify_bundle(BUNDLE_RAW, ROOTS, now=kit.NOW)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def outcome(token) -> str:
    try:
        verify_token(token, BUNDLE, audience="sso", now=kit.NOW)
    except VerificationError as exc:
        assert str(exc), "every refusal explains itself"
        return exc.code
    return "accept"


B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@st.composite
def text_mutation(draw, original: str):
    """Replace, insert or delete characters, or truncate: byte-level edits of the text.

    Positions favour the edges of each part (where base64 padding bits and JSON
    delimiters live) and replacements favour the base64url alphabet, so that subtle
    edits (a signature's last character, a swapped digit) are tried often.
    """
    text = original
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        edges = sorted(
            {0, len(text) - 1, len(text)}
            | {i + d for i, c in enumerate(text) if c in '.,:"' for d in (-1, 0, 1)}
        )
        position = draw(
            st.integers(min_value=0, max_value=len(text))
            | st.sampled_from([e for e in edges if 0 <= e <= len(text)])
        )
        operation = draw(st.sampled_from(["replace", "replace", "insert", "delete", "truncate"]))
        char = draw(
            st.sampled_from(B64_ALPHABET)
            | st.sampled_from(list('.=+/ \n\x00\u00e9{}[],:"0'))
            | st.characters(codec="utf-8")
        )
        if operation == "replace" and position < len(text):
            text = text[:position] + char + text[position + 1 :]
        elif operation == "insert":
            text = text[:position] + char + text[position:]
        elif operation == "delete" and position < len(text):
            text = text[:position] + text[position + 1 :]
        elif operation == "truncate":
            text = text[:position]
    return text


@FUZZ
@given(text_mutation(TOKEN))
def test_no_byte_level_mutation_of_a_token_is_accepted(mutated):
    assume(mutated != TOKEN)
    assert outcome(mutated) != "accept"


@FUZZ
@given(
    part=st.sampled_from(["header", "claims"]),
    name=st.sampled_from(
        [
            "alg",
            "typ",
            "kid",
            "jku",
            "jwk",
            "crit",
            "iss",
            "aud",
            "exp",
            "nbf",
            "iat",
            "jti",
            "scope",
            "sub",
        ]
    ),
    value=json_values
    | st.sampled_from(["none", "HS256", "RS256", "EdDSA", "vpn", kit.NOW + 10**6]),
    delete=st.booleans(),
    resign=st.sampled_from([None, "attacker", "issuer-key-other-kid"]),
)
def test_no_structural_mutation_of_a_token_is_accepted(part, name, value, delete, resign):
    header, claims = {"alg": "EdDSA", "typ": "JWT", "kid": kit.ISSUER_KID}, kit.claims()
    target = header if part == "header" else claims
    if delete:
        target.pop(name, None)
    else:
        target[name] = value
    try:
        signing_input = (
            f"{b64url_encode(canonical_json(header))}.{b64url_encode(canonical_json(claims))}"
        )
    except ValueError:
        return  # not encodable canonically: not a token anyone could mint
    signature = TOKEN.split(".")[2]
    if resign == "attacker":
        signature = b64url_encode(kit.ATTACKER_KEY.sign(signing_input.encode()))
    token = f"{signing_input}.{signature}"
    assume(token != TOKEN)
    assert outcome(token) != "accept"


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), json_values))
def test_arbitrary_input_is_refused_without_any_other_exception(value):
    assert outcome(value) != "accept"


@FUZZ
@given(
    st.lists(
        st.sampled_from(TOKEN.split(".")) | st.text(alphabet="AQgw-_", max_size=90),
        min_size=3,
        max_size=3,
    )
)
def test_recombined_token_parts_are_refused(parts):
    token = ".".join(parts)
    assume(token != TOKEN)
    assert outcome(token) != "accept"


def bundle_outcome(raw) -> str:
    try:
        verify_bundle(raw, ROOTS, now=kit.NOW)
    except VerificationError as exc:
        assert str(exc)
        return exc.code
    return "accept"


@FUZZ
@given(text_mutation(BUNDLE_RAW.decode()))
def test_a_byte_level_mutated_bundle_is_refused_unless_it_means_the_same(mutated):
    raw = mutated.encode("utf-8", "surrogatepass")
    assume(raw != BUNDLE_RAW)
    if bundle_outcome(raw) == "accept":
        # Only insignificant whitespace may differ; the document must be the same.
        assert json.loads(raw) == json.loads(BUNDLE_RAW)


@FUZZ
@given(
    path=st.sampled_from(
        [
            ("payload", "version"),
            ("payload", "issuer"),
            ("payload", "max_token_lifetime"),
            ("payload", "expires_at"),
            ("payload", "revoked_jti"),
            ("payload", "keys"),
            ("payload", "extra"),
            ("signatures", 0, "kid"),
            ("signatures", 1, "sig"),
            ("signatures", 0, "alg"),
            ("signatures",),
            ("payload",),
        ]
    ),
    value=json_values,
)
def test_a_structurally_mutated_bundle_is_refused(path, value):
    document = kit.bundle()
    target = document
    for step in path[:-1]:
        target = target[step]
    assume(target.get(path[-1], object()) != value if isinstance(target, dict) else True)
    target[path[-1]] = value
    assert bundle_outcome(document) != "accept"


@FUZZ
@given(document=json_values, roots=json_values | st.just(ROOTS))
def test_arbitrary_json_bundles_and_roots_are_refused(document, roots):
    try:
        verify_bundle(document, roots, now=kit.NOW)
    except VerificationError:
        return
    pytest.fail("an arbitrary document was accepted as a bundle")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    token=st.text(max_size=200),
    bundle=st.binary(max_size=200) | st.just(BUNDLE_RAW),
    audience=st.text(min_size=1, max_size=10).filter(lambda s: not s.startswith("-")),
)
def test_the_cli_answers_garbage_with_an_exit_code_not_a_traceback(
    token, bundle, audience, tmp_path_factory, capsys
):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "bundle.json").write_bytes(bundle)
    (folder / "roots.json").write_bytes(kit.dumps(ROOTS))
    code = main(
        [
            "verify",
            "--bundle",
            str(folder / "bundle.json"),
            "--roots",
            str(folder / "roots.json"),
            "--audience",
            audience,
            "--now",
            str(kit.NOW),
            "--json",
            "--",
            token,
        ]
    )
    output = capsys.readouterr()
    assert code in (1, 2)
    assert "Traceback" not in output.out + output.err
    assert json.loads(output.out)["decision"] in ("reject", "error")
