"""The WebAuthn endpoints, under the names django-otp-webauthn's template tags reverse
(namespace `otp_webauthn`), pointing at this console's subclasses (accounts.passkeys)."""

from django.urls import path

from breakglass.accounts import passkeys

app_name = "otp_webauthn"

urlpatterns = [
    path(
        "registration/begin/",
        passkeys.PasskeyRegisterBegin.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        passkeys.PasskeyRegisterComplete.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        passkeys.PasskeyAuthBegin.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        passkeys.PasskeyAuthComplete.as_view(),
        name="credential-authentication-complete",
    ),
    path("jsi18n/", passkeys.passkey_js_catalog, name="js-i18n-catalog"),
]
