from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from breakglass.access.models import CriticalService
from comms.models import Audience, Impact, IncidentState, Severity, UpdateTemplate, Webhook
from comms.templating import template_validate


def _people():
    return get_user_model().objects.filter(is_active=True).order_by("username")


class DeclareForm(forms.Form):
    title = forms.CharField(max_length=200)
    severity = forms.TypedChoiceField(choices=Severity.choices, coerce=int)
    commander = forms.ModelChoiceField(queryset=_people(), required=False)
    comms_lead = forms.ModelChoiceField(
        queryset=_people(),
        required=False,
        label="Communications lead",
        help_text="Required for SEV1 and SEV2.",
    )
    services = forms.ModelMultipleChoiceField(
        queryset=CriticalService.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    impact = forms.ChoiceField(choices=Impact.choices, initial=Impact.MAJOR)
    drill = forms.BooleanField(required=False, help_text="Drill: drill subscribers only.")

    def clean(self):
        data = super().clean()
        if data.get("severity") in (1, 2) and not data.get("comms_lead"):
            self.add_error(
                "comms_lead", "A SEV1 or SEV2 cannot be declared without a communications lead."
            )
        return data


class _RoomForm(forms.Form):
    """A small form of the incident room. The room shows several on one page, so each
    names its ids (`auto_id`) to keep them unique and every label pointing at its field."""

    id_prefix = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)


class RoleForm(_RoomForm):
    id_prefix = "role"
    role = forms.ChoiceField(
        choices=[("commander", "Incident commander"), ("comms_lead", "Communications lead")]
    )
    user = forms.ModelChoiceField(
        queryset=_people(), required=False, label="Person", empty_label="Nobody"
    )


class StateForm(_RoomForm):
    id_prefix = "change"
    state = forms.ChoiceField(choices=IncidentState.choices, label="Incident state")


class ImpactForm(_RoomForm):
    id_prefix = "impact"
    service = forms.ModelChoiceField(
        queryset=CriticalService.objects.all(), empty_label="Choose a service"
    )
    impact = forms.ChoiceField(choices=Impact.choices, initial=Impact.MAJOR)


class PostmortemForm(_RoomForm):
    id_prefix = "postmortem"
    url = forms.URLField(
        required=False,
        label="Postmortem link",
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://…"}),
    )


class NoteForm(_RoomForm):
    id_prefix = "note"
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Never public"}),
        label="Internal note",
    )


class DraftForm(forms.Form):
    audience = forms.ChoiceField(choices=Audience.choices, initial=Audience.EXTERNAL)
    state = forms.ChoiceField(choices=IncidentState.choices, label="Incident state")
    template = forms.ModelChoiceField(
        queryset=UpdateTemplate.objects.all(),
        required=False,
        help_text="Load a template into the text below.",
    )
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="Template text; variables like {{ affected_services }} are filled in.",
    )
    next_update_at = forms.DateTimeField(
        required=False,
        label="Next update by (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Empty: the severity's cadence.",
    )

    def clean_body(self):
        body = self.cleaned_data.get("body") or ""
        if body:
            template_validate(body)
        return body


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Send back")])
    notes = forms.CharField(required=False)


class PublishForm(forms.Form):
    override = forms.BooleanField(required=False)
    reason = forms.CharField(required=False)


class SubscribeForm(forms.Form):
    email = forms.CharField(max_length=254, label="E-mail address")
    services = forms.ModelMultipleChoiceField(
        queryset=CriticalService.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all services.",
    )

    def clean_email(self):
        from django.core.validators import validate_email

        email = self.cleaned_data["email"].strip()
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError(f"{email!r} is not a valid e-mail address.") from None
        return email


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(max_length=500, label="URL")
    format = forms.ChoiceField(choices=Webhook.Format.choices)
    drill = forms.BooleanField(required=False, help_text="Receives drill incidents only.")
