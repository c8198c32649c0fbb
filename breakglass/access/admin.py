from django.contrib import admin

from breakglass.access.models import (
    ApiToken,
    Approval,
    BackupPath,
    CriticalService,
    Grant,
    PolicyChange,
    Team,
)
from breakglass.project.admin import ReadOnlyAdmin


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]


@admin.register(CriticalService)
class CriticalServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tier", "owning_team"]
    list_filter = ["tier", "owning_team"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["depends_on"]


@admin.register(BackupPath)
class BackupPathAdmin(admin.ModelAdmin):
    """The policy that guards a path is read-only here once the path exists: it changes
    only through breakglass/access/policy.py (the console's /access/policy/), where
    weakening needs a second administrator. Descriptive and operational fields (name,
    description, what the path requires, the SSH login and host, the drill probe) stay
    editable, and every edit is an audit event. A path added here starts inactive;
    activating it is a weakening change like any other."""

    list_display = [
        "slug",
        "service",
        "method",
        "approvals_required",
        "allow_self_issue",
        "is_active",
    ]
    list_filter = ["method", "allow_self_issue", "is_active"]
    filter_horizontal = ["requires"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "service", "name", "slug", "method", "description", "scopes",
                    "max_lifetime_minutes", "approvals_required", "approver_group",
                    "responder_group", "allow_self_issue", "request_ttl_minutes", "requires",
                    "is_active",
                ]
            },
        ),
        (
            "SSH certificates (one CA per path)",
            {
                "fields": [
                    "ssh_ca", "ssh_principals", "ssh_login", "ssh_host",
                    "ssh_source_addresses", "ssh_force_command",
                ]
            },
        ),
        (
            "Drill probe: the drill logs in here, then expects refusal after the re-seal",
            {"fields": ["probe_ssh_host", "probe_ssh_port", "probe_ssh_login"]},
        ),
    ]  # fmt: skip

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        from breakglass.access.policy import POLICY_FIELDS

        if obj is None:
            return ["is_active"]
        # What the path is (its service = token audience, slug, method) and its policy.
        return ["service", "slug", "method", *POLICY_FIELDS]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.is_active = False
        super().save_model(request, obj, form, change)


@admin.register(PolicyChange)
class PolicyChangeAdmin(ReadOnlyAdmin):
    """Read-only: proposals and decisions happen in the console (fresh OTP, audited)."""

    list_display = ["pk", "path", "state", "proposed_by", "decided_by", "proposed_at"]
    list_filter = ["state"]


class ApprovalInline(admin.TabularInline):
    model = Approval
    extra = 0
    can_delete = False
    readonly_fields = ["approver", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    """Read-only: grants change only through the services, which audit every step."""

    list_display = ["pk", "path", "requester", "state", "emergency", "drill", "created_at"]
    list_filter = ["state", "emergency", "drill"]
    search_fields = ["jti", "incident_ref", "requester__username"]
    exclude = ["credential_encrypted"]
    inlines = [ApprovalInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "user",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    exclude = ["token_hash"]
    # Widening a token (scopes, expiry) from the admin would skip the OTP and the audit
    # event of api_token_create; revoke it in the console and create another instead.
    readonly_fields = ["scopes", "expires_at", "created_with_fresh_otp", "created_at", "prefix"]

    def has_add_permission(self, request):
        return False
