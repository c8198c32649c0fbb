"""Typed verification errors: one class per reason, each with a stable `code` and a human message.

The `code` strings are part of the public contract (CLI `--json` output, golden test vectors
used by implementations in other languages), so never rename one; add a new class instead.
"""

from __future__ import annotations


class VerificationError(Exception):
    """The token or bundle is not acceptable. `str(error)` says why, for a human."""

    code = "invalid"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- Input that is not even well formed ---------------------------------------------------


class MalformedToken(VerificationError):
    code = "malformed_token"


class BadHeader(VerificationError):
    """Header is not exactly {alg, typ, kid} (jku, jwk, x5u, crit... are refused)."""

    code = "bad_header"


class AlgorithmMismatch(BadHeader):
    """`alg` differs from the key's entry in the bundle (`none`, `HS256`, ...)."""

    code = "bad_algorithm"


class MalformedClaims(VerificationError):
    """A required claim is missing or has the wrong type."""

    code = "bad_claims"


class MalformedBundle(VerificationError):
    code = "malformed_bundle"


class MalformedRoots(VerificationError):
    code = "malformed_roots"


# --- Keys and signatures ------------------------------------------------------------------


class UnknownKey(VerificationError):
    code = "unknown_key"


class RevokedKey(VerificationError):
    code = "revoked_key"


class KeyNotValid(VerificationError):
    """The signing key was used outside its `not_before`/`not_after` window."""

    code = "key_not_valid"


class BadSignature(VerificationError):
    code = "bad_signature"


class InsufficientSignatures(BadSignature):
    """Fewer than `threshold` distinct root keys signed the bundle."""

    code = "insufficient_signatures"


# --- Claims -------------------------------------------------------------------------------


class WrongIssuer(VerificationError):
    code = "wrong_issuer"


class WrongAudience(VerificationError):
    code = "wrong_audience"


class WrongSubject(VerificationError):
    """The caller required a specific `sub` (e.g. the local account name) and it differs."""

    code = "wrong_subject"


class DrillNotAllowed(VerificationError):
    """A `drill: true` token where the caller did not opt in (`allow_drill`, `--allow-drill`):
    drill credentials are minted without approval, so only probe endpoints take them."""

    code = "drill_not_allowed"


class ExpiredToken(VerificationError):
    code = "expired"


class NotYetValid(VerificationError):
    code = "not_yet_valid"


class IssuedInFuture(VerificationError):
    code = "issued_in_future"


class LifetimeTooLong(VerificationError):
    code = "lifetime_too_long"


class RevokedToken(VerificationError):
    code = "revoked"


class MissingScope(VerificationError):
    code = "missing_scope"


class ReplayedToken(VerificationError):
    code = "replayed"


# --- Bundle freshness ---------------------------------------------------------------------


class ExpiredBundle(VerificationError):
    code = "expired_bundle"


class BundleNotYetValid(VerificationError):
    code = "bundle_not_yet_valid"


class StaleBundle(VerificationError):
    """Version lower than one this verifier has already accepted (rollback)."""

    code = "stale_bundle"


class ConflictingBundle(StaleBundle):
    """Same version as one already accepted but different content (equivocation)."""

    code = "conflicting_bundle"


# --- The sealed offline kit (breakglass/core/kit.py) -------------------------------------


class MalformedKit(VerificationError):
    code = "malformed_kit"


class RetiredKit(RevokedKey):
    """The kit's key id is in the bundle's `revoked_kids`: the kit was retired."""

    code = "retired_kit"


class BeyondKitPolicy(VerificationError):
    """A kit token asks for an audience, scope or lifetime its kit does not allow."""

    code = "beyond_kit_policy"


# --- Local state --------------------------------------------------------------------------


class StateError(VerificationError):
    """The state directory cannot be read or written; we fail closed."""

    code = "state_error"


ALL_ERRORS: tuple[type[VerificationError], ...] = (
    VerificationError,
    MalformedToken,
    BadHeader,
    AlgorithmMismatch,
    MalformedClaims,
    MalformedBundle,
    MalformedRoots,
    UnknownKey,
    RevokedKey,
    KeyNotValid,
    BadSignature,
    InsufficientSignatures,
    WrongIssuer,
    WrongAudience,
    WrongSubject,
    DrillNotAllowed,
    ExpiredToken,
    NotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    RevokedToken,
    MissingScope,
    ReplayedToken,
    ExpiredBundle,
    BundleNotYetValid,
    StaleBundle,
    ConflictingBundle,
    StateError,
    MalformedKit,
    RetiredKit,
    BeyondKitPolicy,
)
