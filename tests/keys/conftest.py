import pytest

from breakglass.keys import services


@pytest.fixture(autouse=True)
def _trust_dir(settings, tmp_path):
    """Each test publishes into its own directory, so files from one never satisfy another."""
    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    settings.BREAKGLASS_ISSUER = "https://breakglass.test"
    settings.BREAKGLASS_ROOT_THRESHOLD = 2
    return settings.TRUST_PUBLISH_DIR


@pytest.fixture
def trust(db, django_capture_on_commit_callbacks):
    """Bootstrapped keys: three roots (threshold 2), an issuer key, bundle version 1."""
    with django_capture_on_commit_callbacks(execute=True):
        services.keys_bootstrap()
