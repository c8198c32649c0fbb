from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from breakglass.accounts import roles, services


class Command(BaseCommand):
    help = "Give a user a console role (or take it away with --remove)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=roles.ALL_ROLES)
        parser.add_argument("--remove", action="store_true", help="take the role away")

    def handle(self, *args, username, role, remove, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Unknown user {username!r}.")
        if remove:
            services.role_remove(user=user, role=role)
            self.stdout.write(f"{username} is no longer {role}.")
        else:
            services.role_assign(user=user, role=role)
            self.stdout.write(f"{username} is now {role}.")
