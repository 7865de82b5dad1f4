from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        from agents import signals, tasks

        # Signals are sent after commit, so the task never runs ahead of the data it reads.
        signals.session_resumable.connect(tasks.enqueue_resume, dispatch_uid="agents-enqueue-resume")
