from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        # Receivers that close a user's open websockets when the account changes.
        from accounts import signals  # noqa: F401
