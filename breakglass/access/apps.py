from django.apps import AppConfig


class BreakglassConfig(AppConfig):
    # The label stays "breakglass" so migrations, table names and content types carry over.
    name = "breakglass.access"
    label = "breakglass"
    verbose_name = "Break-glass access"
