from django.apps import AppConfig


class WebConfig(AppConfig):
    """Pages shared by everyone (home, sign-in, errors), middleware, health and metrics, and
    Warden's deploy checks."""

    name = "web"
    verbose_name = "Web"

    def ready(self) -> None:
        from web import checks  # noqa: F401 - registers Warden's deploy checks
