from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from agents import context, signals, tasks
        from agents.api import schema  # noqa: F401 - registers the OpenAPI authentication extensions
        from governance.models import ContextRule, DataObject

        for model in (ContextRule, DataObject):
            post_save.connect(context.forget_policy, sender=model, dispatch_uid=f"agents-forget-{model.__name__}")
            post_delete.connect(context.forget_policy, sender=model, dispatch_uid=f"agents-forget-del-{model.__name__}")

        # Signals are sent after commit, so the task never runs ahead of the data it reads.
        signals.session_resumable.connect(tasks.enqueue_resume, dispatch_uid="agents-enqueue-resume")

        from agents.sessions import end_withdrawn_sessions
        from governance.signals import access_withdrawn

        access_withdrawn.connect(end_withdrawn_sessions, dispatch_uid="agents-end-withdrawn")
