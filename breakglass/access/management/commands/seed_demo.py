from django.core.management.base import BaseCommand

from breakglass.access.seed import seed_demo


class Command(BaseCommand):
    help = "Create (or complete) the demo organisation, its people and their credentials."

    def handle(self, *args, **options):
        seed_demo(stdout=self.stdout)
