from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from breakglass.accounts import selectors, services
from breakglass.accounts.selectors import login_locked_until


def _wait_message(seconds: int) -> str:
    unit = "second" if seconds == 1 else "seconds"
    return f"Too many wrong codes. Try again in {seconds} {unit}; each failure doubles the wait."


class LoginForm(AuthenticationForm):
    """Username and password, with per-username exponential back-off on failures."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username and password:
            locked_until = login_locked_until(username=username)
            if locked_until is not None:
                # Refused without checking the password, so guessing gains nothing here.
                services.login_refusal_record(username=username, locked_until=locked_until)
                seconds = services.seconds_until(locked_until)
                raise forms.ValidationError(
                    f"Too many failed log-ins for this account. Try again in {seconds} "
                    f"second{'s' if seconds != 1 else ''}.",
                    code="throttled",
                )
            try:
                return super().clean()
            except forms.ValidationError as error:
                if getattr(error, "code", None) == "invalid_login":
                    services.login_failure_record(username=username)
                raise
        return super().clean()


class OTPForm(forms.Form):
    """One field: a 6-digit code from the authenticator app, or a backup code."""

    otp_token = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autofocus": True,
                "autocapitalize": "none",
                "spellcheck": "false",
            }
        ),
    )

    def __init__(self, user, *args, purpose: str = "verify", **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.purpose = purpose
        self.device = None

    def clean_otp_token(self):
        token = self.cleaned_data["otp_token"]
        outcome = services.otp_check(user=self.user, token=token, purpose=self.purpose)
        if outcome.ok:
            self.device = outcome.device
            return token
        if outcome.passkey_required:
            if self.purpose == "sudo" and not selectors.passkeys_for(user=self.user):
                raise forms.ValidationError(
                    "Your role requires a passkey for sensitive actions. Register a passkey or "
                    "security key on your account page first.",
                    code="passkey_required",
                )
            raise forms.ValidationError(
                "Your role requires a passkey here: use your passkey or security key below, "
                "not a code.",
                code="passkey_required",
            )
        if outcome.reused:
            raise forms.ValidationError(
                "That code was already used; wait for the next one to appear in your app "
                "and enter it.",
                code="reused",
            )
        if outcome.locked_until is not None:
            raise forms.ValidationError(_wait_message(outcome.wait_seconds()), code="throttled")
        raise forms.ValidationError(
            "That code is not valid. Use the current 6-digit code from your app (check the "
            "phone's clock) or an unused backup code.",
            code="invalid",
        )


class EnrolForm(forms.Form):
    """Confirms a new authenticator app with its first code."""

    name = forms.CharField(
        label="Name for this device",
        max_length=64,
        required=False,
        initial="Authenticator app",
        help_text="So you can tell your devices apart later, e.g. “work phone”.",
    )
    otp_token = forms.CharField(
        label="Code from the app",
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def __init__(self, device, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.device = device

    def clean_otp_token(self):
        token = self.cleaned_data["otp_token"]
        outcome = services.totp_device_confirm(
            device=self.device, token=token, name=self.cleaned_data.get("name", "")
        )
        if outcome.ok:
            self.device = outcome.device
            return token
        if outcome.locked_until is not None:
            raise forms.ValidationError(_wait_message(outcome.wait_seconds()), code="throttled")
        raise forms.ValidationError(
            "That code does not match. Scan the QR code again (or type the key), check the "
            "phone's clock, and enter the code the app shows now.",
            code="invalid",
        )
