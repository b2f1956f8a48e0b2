from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.signals import user_logged_out
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    CITIZEN = "citizen", "Citizen 市民"
    DISPATCHER = "dispatcher", "Dispatcher 调度员"
    CREW = "crew", "Ambulance crew 急救车组"
    HOSPITAL = "hospital", "Hospital staff 医院"
    ADMIN = "admin", "Administrator 管理员"


class User(AbstractUser):
    """Everyone who signs in. Citizens sign in by phone (their username is the phone);
    staff by username. A crew member's ambulance and a hospital user's hospital are bound in
    ``dispatch`` (CrewMember, HospitalStaff) so that this app depends on nothing."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CITIZEN, db_index=True)
    phone = models.CharField(max_length=20, unique=True, null=True, blank=True)
    # A shift supervisor is a dispatcher who may also declare surge mode, put units out of service
    # in bulk and read the reports. A flag rather than a role: a supervisor still works the queue,
    # and every check that asks "is this a dispatcher?" keeps its answer.
    supervisor = models.BooleanField(
        default=False, help_text="Dispatchers only: may declare surge mode, update units in bulk and read reports."
    )

    @property
    def is_dispatcher(self) -> bool:
        return self.role in (Role.DISPATCHER, Role.ADMIN)

    @property
    def is_supervisor(self) -> bool:
        return self.role == Role.ADMIN or (self.role == Role.DISPATCHER and self.supervisor)


class ApiToken(models.Model):
    """An API credential: several per user (phone and tablet), expiring and revocable. Only the
    SHA-256 of the key is stored; the key itself is shown once, when it is issued."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    label = models.CharField(max_length=100, blank=True, default="", help_text="Which device or client asked for it.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=40, blank=True, default="")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        indexes = [models.Index(fields=["user", "revoked_at"], name="apitoken_user_live")]

    def __str__(self) -> str:
        return f"token {self.pk} of {self.user_id}"


def _revoke_api_tokens_on_session_logout(sender, request, user, **kwargs):
    # Signing out of a console means signing out everywhere: the user's API tokens (a tablet left
    # in the ambulance, a script) end too. A crew member who signs out of a browser signs in again
    # on the tablet; the reverse (a token left valid after "sign out") is what the issue reported.
    # Connected at model import so it is live wherever the app is loaded.
    if user is None:
        return
    from accounts.services import user_tokens_revoke

    user_tokens_revoke(user_id=user.pk, reason="session_logout")


user_logged_out.connect(_revoke_api_tokens_on_session_logout, dispatch_uid="accounts.revoke_api_tokens_on_session_logout")
