from django.apps import AppConfig


class HealthRecordsConfig(AppConfig):
    name = "health_records"
    verbose_name = "Health archives"

    def ready(self):
        # Refuse to start without real keys when DEBUG is off; with DEBUG on, a development key
        # file is read or generated in .secrets/. A malformed value is refused either way.
        from health_records import keys

        keys.reset_keyring()
        keys.keyring()
        # The same for the access log's HMAC and checkpoint-signing keys (and checkpoint directory).
        from health_records import audit

        audit.check_configuration()
