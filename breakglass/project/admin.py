"""Admin conventions shared by every app."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: no add, change or delete through the admin. For rows that change only
    through services, which audit every step (grants, keys, bundles, drill runs...)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
