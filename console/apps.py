from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The admins' and compliance staff's pages: provisioning, workflow versions and access
    reviews, recertification campaigns. Every change goes through governance.services."""

    name = "console"
    verbose_name = "Admin and compliance console"
