from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


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

    @property
    def is_dispatcher(self) -> bool:
        return self.role in (Role.DISPATCHER, Role.ADMIN)
