from typing import Any

from django.core.management.base import BaseCommand

from demo_systems.seed import seed


class Command(BaseCommand):
    help = "Load the demo CRM and helpdesk records and give Warden API keys for them."

    def handle(self, *args: Any, **options: Any) -> None:
        seed()
        self.stdout.write("Demo systems seeded.")
