from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "breakglass.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"
