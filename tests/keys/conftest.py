import pytest


@pytest.fixture(autouse=True)
def _trust_dir(settings, tmp_path):
    """Each test publishes into its own directory, so files from one never satisfy another."""
    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    settings.BREAKGLASS_ISSUER = "https://breakglass.test"
    settings.BREAKGLASS_ROOT_THRESHOLD = 2
    return settings.TRUST_PUBLISH_DIR
