import pytest
from django.test import Client


@pytest.fixture
def password_client():
    """A client logged in with a password only: no OTP step done yet."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
