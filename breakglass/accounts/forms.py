from django import forms
from django_otp import devices_for_user


class OTPForm(forms.Form):
    """One field: a 6-digit code from the authenticator app, or a backup code."""

    otp_token = forms.CharField(
        label="Code",
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.device = None

    def clean_otp_token(self):
        token = self.cleaned_data["otp_token"].strip().replace(" ", "")
        throttled = None
        for device in devices_for_user(self.user, confirmed=True, for_verify=True):
            allowed, info = device.verify_is_allowed()
            if not allowed:
                throttled = info or {}
                continue
            if device.verify_token(token):
                self.device = device
                return token
        if throttled and throttled.get("locked_until"):
            raise forms.ValidationError(
                "Too many wrong codes. Wait a little and try again; each failure doubles the wait."
            )
        raise forms.ValidationError("That code is not valid. Check the time on your device.")
