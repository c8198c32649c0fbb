from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "breakglass.keys"
    label = "keys"
    verbose_name = "Keys and trust bundle"

    def ready(self):
        from django.core.checks import register

        from breakglass.project.files import data_dir_permission_warnings

        register(data_dir_permission_warnings, "security")
