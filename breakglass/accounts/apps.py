from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _roles_after_migrate(sender, apps=None, using="default", **kwargs):
    from breakglass.accounts.roles import roles_ensure

    # Runs after every app's migrations (not only ours): the areas' permissions are
    # created by their own post_migrate, after this app's, and roles must pick them up.
    roles_ensure(apps=apps, using=using)


class AccountsConfig(AppConfig):
    name = "breakglass.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from breakglass.accounts.audit_hooks import audit_hooks_connect
        from breakglass.accounts.mfa_secrets import mfa_secrets_connect

        post_migrate.connect(_roles_after_migrate, dispatch_uid="breakglass.accounts.roles")
        audit_hooks_connect()
        mfa_secrets_connect()
