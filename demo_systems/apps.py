from django.apps import AppConfig


class DemoSystemsConfig(AppConfig):
    """Stand-ins for the enterprise systems agents work on (a CRM, a helpdesk, outbound mail).

    They live in their own tables and are reached only through agents/connectors, as a
    real CRM would be reached over its API.
    """

    name = "demo_systems"
    verbose_name = "Demo enterprise systems"
