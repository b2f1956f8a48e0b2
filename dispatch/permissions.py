"""Deny by default: each permission checks the role and the object the URL names."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from accounts.models import Role
from dispatch.selectors import ambulance_of_crew, hospital_of_staff


def is_dispatcher(user) -> bool:
    return bool(user and user.is_authenticated and user.role in (Role.DISPATCHER, Role.ADMIN))


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
    message = "Only citizens may do this."

    def has_permission(self, request, view):
        return bool(request.user.is_authenticated and request.user.role == Role.CITIZEN)
