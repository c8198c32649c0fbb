import pytest

from breakglass.core import verify_bundle
from devkit import keykit as kit


@pytest.fixture
def bundle():
    return verify_bundle(kit.bundle(), kit.roots(), now=kit.NOW)


@pytest.fixture
def verify(bundle):
    """verify_token with the test defaults: audience sso, now = kit.NOW."""
    from breakglass.core import verify_token

    def run(token, **options):
        options.setdefault("audience", kit.AUDIENCE)
        options.setdefault("now", kit.NOW)
        return verify_token(token, options.pop("bundle", bundle), **options)

    return run


@pytest.fixture
def kit_bundle():
    """The test bundle carrying the test kit (tests/verifier/kit.py)."""
    return verify_bundle(kit.bundle(kits=[kit.kit_document()]), kit.roots(), now=kit.NOW)
