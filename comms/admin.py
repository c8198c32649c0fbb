from django import forms
from django.contrib import admin

from comms.models import Incident, Maintenance, Subscriber, UpdateTemplate, Webhook
from comms.templating import template_validate


class UpdateTemplateForm(forms.ModelForm):
    class Meta:
        model = UpdateTemplate
        fields = ["name", "state", "audience", "body"]

    def clean_body(self):
        template_validate(self.cleaned_data["body"])  # unknown variables are an error
        return self.cleaned_data["body"]


@admin.register(UpdateTemplate)
class UpdateTemplateAdmin(admin.ModelAdmin):
    form = UpdateTemplateForm
    list_display = ["name", "state", "audience"]


@admin.register(Maintenance)
class MaintenanceAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "scheduled_for", "scheduled_until"]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["reference", "title", "severity", "state", "drill"]
    readonly_fields = [f.name for f in Incident._meta.fields]


admin.site.register(Subscriber)


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    # Created and re-enabled through the audited services (comms leads and administrators,
    # URL vetted against SSRF); the signing secret is never displayed after creation.
    list_display = ["name", "format", "active", "owner", "drill"]
    exclude = ["secret"]
    readonly_fields = ["url", "owner", "created_at", "consecutive_failures", "disabled_reason"]

    def has_add_permission(self, request):
        return False
