from django.contrib import admin

from breakglass.keys.models import RevokedCredential, SigningKey, TrustBundle
from breakglass.project.admin import ReadOnlyAdmin


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    list_display = ("kid", "purpose", "name", "state", "not_before", "not_after")
    list_filter = ("purpose", "state")
    # The encrypted private key is never loaded or shown, not even as ciphertext.
    exclude = ("private_key_encrypted",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("private_key_encrypted")


@admin.register(RevokedCredential)
class RevokedCredentialAdmin(ReadOnlyAdmin):
    list_display = ("jti", "expires_at", "revoked_at", "reason")
    search_fields = ("jti",)


@admin.register(TrustBundle)
class TrustBundleAdmin(ReadOnlyAdmin):
    list_display = ("version", "issued_at", "expires_at", "imported", "reason")
