"""The Django admin for drills. Drill definitions are configuration and stay editable;
everything that records what happened (runs, steps, participants, game days) or stops
drills (kill switch, blackout windows) is read-only here, because its writes belong to
services that check the actor's role, abort runs and write the audit event. An
administrator engages the kill switch from /drills/, like everyone else."""

from django.contrib import admin

from breakglass.project.admin import ReadOnlyAdmin
from drills.models import (
    BlackoutWindow,
    Drill,
    DrillParticipant,
    DrillRun,
    DrillSinkDelivery,
    DrillStep,
    GameDay,
    KillSwitchEvent,
)


@admin.register(Drill)
class DrillAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "selection", "owner", "schedule", "is_active"]
    list_filter = ["kind", "selection", "is_active"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["paths", "participants"]


class DrillStepInline(admin.TabularInline):
    model = DrillStep
    extra = 0
    readonly_fields = ["name", "order", "state", "started_at", "finished_at", "evidence", "reason"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DrillRun)
class DrillRunAdmin(ReadOnlyAdmin):
    list_display = ["pk", "path", "kind", "trigger", "state", "created_at", "time_to_access_ms"]
    list_filter = ["state", "kind", "trigger"]
    inlines = [DrillStepInline]


@admin.register(KillSwitchEvent)
class KillSwitchEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "engaged", "actor", "reason"]


@admin.register(BlackoutWindow)
class BlackoutWindowAdmin(ReadOnlyAdmin):
    list_display = ["starts_at", "ends_at", "reason", "created_by"]


admin.site.register(DrillParticipant, ReadOnlyAdmin)
admin.site.register(GameDay, ReadOnlyAdmin)
admin.site.register(DrillSinkDelivery, ReadOnlyAdmin)
