from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from governance.roles import Role, set_roles

ACCOUNTS = [
    ("reviewer", [Role.REVIEWER]),
    ("reviewer2", [Role.REVIEWER]),
    ("admin", [Role.ADMIN]),
    ("compliance", [Role.COMPLIANCE]),
    ("security", [Role.SECURITY]),
]


class Command(BaseCommand):
    help = "Create one local account per role for the demo. Refused unless WARDEN_DEV_LOGIN=1."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.WARDEN_DEV_LOGIN:
            raise CommandError("dev accounts exist only with WARDEN_DEV_LOGIN=1 (never in production)")
        User = get_user_model()
        for username, roles in ACCOUNTS:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.set_password(f"{username}-dev-only")
            user.is_staff = user.is_superuser = Role.ADMIN in roles
            user.save()
            set_roles(user, set(roles))
            self.stdout.write(f"  {username:<11} password {username}-dev-only   roles: {', '.join(roles)}")
