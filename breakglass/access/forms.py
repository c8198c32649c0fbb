from datetime import timedelta

from django import forms

from breakglass.access.models import BackupPath


class GrantRequestForm(forms.Form):
    """What a responder asks for. The services hold the rules; the form only shapes input."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,  # checked by the service, so the refusal is audited like any other
        help_text="What you will do with the access.",
    )
    incident_ref = forms.CharField(
        label="Incident reference", required=False, max_length=100, help_text="e.g. INC-2026-0042"
    )
    scopes = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked = all of them."
    )
    # Text, not IntegerField: the service checks it (a whole number, within the path's
    # maximum) together with everything else, so one submit shows every problem.
    lifetime_minutes = forms.CharField(
        label="Lifetime (minutes)",
        required=False,
        widget=forms.NumberInput(attrs={"min": 1, "inputmode": "numeric"}),
    )
    ssh_public_key = forms.CharField(
        label="Your SSH public key",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "ssh-ed25519 AAAA... you@laptop"}),
    )

    def __init__(self, *args, path: BackupPath, **kwargs):
        super().__init__(*args, **kwargs)
        self.path = path
        self.fields["scopes"].choices = [(scope, scope) for scope in path.scopes]
        self.fields["lifetime_minutes"].initial = path.max_lifetime_minutes
        self.fields["lifetime_minutes"].help_text = f"At most {path.max_lifetime_minutes}."
        if path.method != BackupPath.Method.SSH_CERTIFICATE:
            del self.fields["ssh_public_key"]

    def add_problems(self, exc) -> None:
        """Show a refusal from the service (`GrantError`): each problem beside its field,
        all of them at once; the rest above the form."""
        for problem in exc.problems or ():
            self.add_error(problem.field if problem.field in self.fields else None, problem.message)
        if not exc.problems:
            self.add_error(None, exc.message)


class BreakGlassForm(GrantRequestForm):
    confirmation = forms.CharField(
        label="Type the path's slug to confirm",
        required=False,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args, path: BackupPath, **kwargs):
        super().__init__(*args, path=path, **kwargs)
        self.fields["confirmation"].help_text = f"This path's slug is {path.slug}."


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class ReviewForm(forms.Form):
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class ApiTokenForm(forms.Form):
    LIFETIMES = {
        "8h": timedelta(hours=8),
        "24h": timedelta(hours=24),
        "7d": timedelta(days=7),
        "30d": timedelta(days=30),
        "90d": timedelta(days=90),
        "365d": timedelta(days=365),
    }

    name = forms.CharField(max_length=100, required=False, help_text="e.g. incident-bot")
    scopes = forms.MultipleChoiceField(
        choices=[
            ("read", "read: list paths and grants"),
            ("request", "request: request, break the glass, revoke"),
            ("approve", "approve: approve requests (with your OTP in each call)"),
            ("credential", "credential: receive issued credentials (at most 24 hours)"),
        ],
        initial=["read", "request"],
        widget=forms.CheckboxSelectMultiple,
    )
    lifetime = forms.ChoiceField(
        choices=[(key, key) for key in LIFETIMES], initial="90d", label="Expires after"
    )

    def lifetime_delta(self) -> timedelta:
        return self.LIFETIMES[self.cleaned_data["lifetime"]]


_TRISTATE = [("", "unchanged"), ("on", "on"), ("off", "off")]


class PolicyChangeForm(forms.Form):
    """A proposed change to one path's guarding policy; empty fields stay as they are.
    The rules (what weakens, who may approve) live in breakglass/access/policy.py."""

    path = forms.ModelChoiceField(
        queryset=BackupPath.objects.select_related("service").order_by("slug"),
        to_field_name="slug",
    )
    approvals_required = forms.IntegerField(required=False, min_value=1, max_value=10)
    allow_self_issue = forms.ChoiceField(required=False, choices=_TRISTATE, label="Self-issue")
    responder_group = forms.CharField(required=False, max_length=150)
    approver_group = forms.CharField(required=False, max_length=150)
    ssh_ca = forms.CharField(required=False, max_length=64, label="SSH CA (kid)")
    max_lifetime_minutes = forms.IntegerField(
        required=False, min_value=1, label="Longest lifetime (minutes)"
    )
    scopes = forms.CharField(required=False, help_text="Comma-separated; replaces the list.")
    ssh_principals = forms.CharField(
        required=False, help_text="Comma-separated; replaces the list."
    )
    ssh_source_addresses = forms.CharField(
        required=False, help_text="Comma-separated CIDR blocks; replaces the list."
    )
    ssh_force_command = forms.CharField(required=False, max_length=1000)
    is_active = forms.ChoiceField(required=False, choices=_TRISTATE, label="Active")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))

    def changes(self) -> dict:
        data = self.cleaned_data
        changes: dict = {}
        for name in ("approvals_required", "max_lifetime_minutes"):
            if data.get(name) is not None:
                changes[name] = data[name]
        for name in ("allow_self_issue", "is_active"):
            if data.get(name):
                changes[name] = data[name] == "on"
        for name in ("responder_group", "approver_group", "ssh_ca", "ssh_force_command"):
            if data.get(name, "").strip():
                changes[name] = data[name].strip()
        for name in ("scopes", "ssh_principals", "ssh_source_addresses"):
            if data.get(name, "").strip():
                changes[name] = [item.strip() for item in data[name].split(",") if item.strip()]
        return changes
