from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from breakglass.accounts import services


class Command(BaseCommand):
    help = (
        "Delete a user's authenticator apps and backup codes (lost phone); their next "
        "log-in sets up a new app. The way back in when no administrator can log in."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Unknown user {username!r}.")
        count = services.otp_devices_reset(user=user)
        self.stdout.write(
            f"Removed {count} device(s) of {username}. They set up a new authenticator app "
            "at their next log-in; make sure they do so promptly."
        )
