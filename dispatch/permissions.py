"""Deny by default: each permission checks the role and the object the URL names."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from accounts.models import Role
from dispatch.selectors import ambulance_of_crew, hospital_of_staff
from health_records.models import GrantRole


def is_dispatcher(user) -> bool:
    # Who counts as a dispatcher is the account's to say (User.is_dispatcher); this adds only
    # "signed in", so an anonymous user needs no such attribute.
    return bool(user and user.is_authenticated and user.is_dispatcher)


def is_citizen(user) -> bool:
    return bool(user and user.is_authenticated and user.role == Role.CITIZEN)


def is_supervisor(user) -> bool:
    return bool(user and user.is_authenticated and user.is_supervisor)


def is_crew_of(user, ambulance_id: int) -> bool:
    return bool(user and user.is_authenticated and user.role == Role.CREW and ambulance_of_crew(user) == ambulance_id)


def is_staff_of(user, hospital_id: int) -> bool:
    return bool(
        user and user.is_authenticated and user.role == Role.HOSPITAL and hospital_of_staff(user) == hospital_id
    )


class IsDispatcher(BasePermission):
    message = "Only dispatchers may do this."

    def has_permission(self, request, view):
        return is_dispatcher(request.user)


class IsSupervisor(BasePermission):
    message = "Only a shift supervisor may do this. 仅值班主任可操作。"

    def has_permission(self, request, view):
        return is_supervisor(request.user)


class IsStaff(BasePermission):
    """Any 120 staff role: reference data such as units and hospitals."""

    message = "Only 120 staff may do this."

    def has_permission(self, request, view):
        return bool(request.user.is_authenticated and request.user.role != Role.CITIZEN)


class IsCitizen(BasePermission):
    """The one citizen check; a view may word the refusal its own way (``message``)."""

    message = "Only citizens may do this."

    def has_permission(self, request, view):
        return is_citizen(request.user)


def health_grant_roles(user) -> set[str]:
    """The health-archive grant roles an account may hold (settings.HEALTH_GRANT_ROLES_OF):
    health_records knows its grant roles, not our account roles, so the mapping lives here."""
    # By role only: an inactive account keeps its role here and health_records refuses it as
    # reader_inactive, which is the answer the reader should see.
    if is_dispatcher(user):
        return {GrantRole.DISPATCHER}
    role = getattr(user, "role", None)
    if role == Role.CREW:
        return {GrantRole.CREW}
    if role == Role.HOSPITAL:
        return {GrantRole.HOSPITAL}
    return set()
