from django.contrib import admin

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


@admin.register(DrillRun)
class DrillRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "path", "kind", "trigger", "state", "created_at", "time_to_access_ms"]
    list_filter = ["state", "kind", "trigger"]
    inlines = [DrillStepInline]
    readonly_fields = ["attempt", "lease_expires_at", "current_step", "recovery_notes"]


admin.site.register(DrillParticipant)
admin.site.register(GameDay)
admin.site.register(KillSwitchEvent)
admin.site.register(BlackoutWindow)
admin.site.register(DrillSinkDelivery)
