"""The offline verifier: decide whether a Breakglass token is acceptable with no server.

Imports only the standard library and `cryptography`, so it can run inside any
service (SSH `AuthorizedKeysCommand`, an nginx `auth_request` sidecar, a PAM hook)
while the Breakglass server, SSO and everything else are down. See docs/verifier.md.

    bundle = verify_bundle(bundle_bytes, roots_bytes, state_dir="/var/lib/breakglass")
    claims = verify_token(token, bundle, audience="sso", scope="ssh:login")
"""

from breakglass.core.bundle import VerifiedBundle, roots_load, verify_bundle
from breakglass.core.errors import *  # noqa: F403
from breakglass.core.errors import ALL_ERRORS, VerificationError
from breakglass.core.token import verify_token

__all__ = [
    "ALL_ERRORS",
    "VerificationError",
    "VerifiedBundle",
    "roots_load",
    "verify_bundle",
    "verify_token",
    *(error.__name__ for error in ALL_ERRORS),
]
