from django.apps import AppConfig


class DispatchConfig(AppConfig):
    name = "dispatch"
    verbose_name = "Dispatch"

    def ready(self) -> None:
        # The surge proposal registers itself with the alerts ticker on import: import it here so
        # every worker's tick runs it, not only a worker that happened to serve a surge request.
        from dispatch import surge  # noqa: F401
