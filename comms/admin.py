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
admin.site.register(Webhook)
