from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "breakglass.keys"
    label = "keys"
    verbose_name = "Keys and trust bundle"
