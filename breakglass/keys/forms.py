"""Console forms for the sealed kit (the rules live in breakglass/keys/kits.py)."""

from __future__ import annotations

from django import forms
from django.apps import apps
from django.contrib.auth.models import User


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class KitCreateForm(forms.Form):
    kit_id = forms.SlugField(max_length=100, label="Kit id", help_text="e.g. kit-2026")
    audiences = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Services the kit may mint for (their slugs, the tokens' audience), one per line.",
    )
    scopes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="Scopes it may grant, one per line."
    )
    ssh_paths = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="SSH paths",
        help_text="SSH certificate paths the kit also covers (their slugs), one per line; "
        "each keeps its principals and critical options.",
    )
    max_lifetime_minutes = forms.IntegerField(min_value=1, max_value=24 * 60, initial=60)
    custodians = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One custodian per line, in share order: a username or a person's name.",
    )
    threshold = forms.IntegerField(min_value=2, max_value=16, initial=2)
    valid_days = forms.IntegerField(min_value=1, max_value=3650, initial=730)

    def clean_audiences(self):
        slugs = _lines(self.cleaned_data["audiences"])
        service = apps.get_model("breakglass", "CriticalService")
        known = set(service.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        unknown = [slug for slug in slugs if slug not in known]
        if not slugs or unknown:
            raise forms.ValidationError(
                f"Unknown service(s): {', '.join(unknown)}" if unknown else "Name a service."
            )
        return slugs

    def clean_scopes(self):
        scopes = _lines(self.cleaned_data["scopes"])
        if not scopes:
            raise forms.ValidationError("Name at least one scope.")
        return scopes

    def clean_ssh_paths(self):
        return _lines(self.cleaned_data["ssh_paths"])

    def clean_custodians(self):
        names = _lines(self.cleaned_data["custodians"])
        if len(names) < 2 or len(set(names)) != len(names):
            raise forms.ValidationError("Name at least two distinct custodians.")
        users = {u.username: u for u in User.objects.filter(username__in=names)}
        return [(name, users.get(name)) for name in names]

    def clean(self):
        data = super().clean()
        custodians, threshold = data.get("custodians"), data.get("threshold")
        if custodians and threshold and threshold > len(custodians):
            self.add_error("threshold", f"At most {len(custodians)} (the number of custodians).")
        return data


class KitCheckForm(forms.Form):
    code = forms.CharField(
        max_length=300,
        label="Check code",
        help_text="The last line `breakglass kit check` printed.",
    )


class KitRetireForm(forms.Form):
    reason = forms.CharField(max_length=500)
