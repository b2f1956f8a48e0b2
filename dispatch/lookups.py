"""The object a URL names, fetched one way for every endpoint: a selector reads it, and this refuses
it in the same words everywhere. 404 when it does not exist (and, for a citizen, when it is someone
else's: its existence is nobody else's business); 403, saying who may, when it exists but the
reader has no part in it.

Each returns the object it checked, so a view reads it once. A view that also answers with a
stream's ``last_seq`` reads that first and the object here after it (a change racing the read is
replayed on resume, harmlessly); the check itself reveals nothing before it refuses."""

from __future__ import annotations

from rest_framework.exceptions import PermissionDenied

from dispatch import selectors
from dispatch.errors import NotFound
from dispatch.models import Admission, Ambulance, Case, Hospital
from dispatch.permissions import is_crew_of, is_dispatcher, is_staff_of


def case_or_404(case_id: int, *, caller=None) -> Case:
    """The case; with ``caller``, only if it is theirs (a citizen's view of their own case)."""
    case = selectors.case_by_id(case_id)
    if case is None or (caller is not None and case.caller_id != caller.pk):
        raise NotFound(f"No case with id {case_id}.")
    return case


def unit_or_404(ambulance_id: int) -> Ambulance:
    unit = selectors.unit_by_id(ambulance_id)
    if unit is None:
        raise NotFound(f"No ambulance with id {ambulance_id}.")
    return unit


def unit_for_crew(user, ambulance_id: int, *, dispatcher_too: bool = True) -> Ambulance:
    """The unit, for its crew (and, unless ``dispatcher_too`` is False, a dispatcher)."""
    unit = unit_or_404(ambulance_id)
    if is_crew_of(user, ambulance_id):
        return unit
    if dispatcher_too and is_dispatcher(user):
        return unit
    raise PermissionDenied(
        "Only this unit's crew (or a dispatcher) may do this." if dispatcher_too else "Only this unit's crew may do this."
    )


def _at_hospital(user, hospital_id: int, *, dispatcher_too: bool) -> bool:
    return is_staff_of(user, hospital_id) or (dispatcher_too and is_dispatcher(user))


def hospital_for_staff(user, hospital_id: int, *, refusal: str, dispatcher_too: bool = True) -> Hospital:
    """The hospital (with its incoming count), for its staff (and a dispatcher unless
    ``dispatcher_too`` is False); ``refusal`` says who may, for the 403."""
    hospital = selectors.hospital_with_load(hospital_id)
    if hospital is None:
        raise NotFound(f"No hospital with id {hospital_id}.")
    if not _at_hospital(user, hospital_id, dispatcher_too=dispatcher_too):
        raise PermissionDenied(refusal)
    return hospital


def admission_for_staff(user, admission_id: int, *, refusal: str, dispatcher_too: bool = True) -> Admission:
    """The admission, for its destination hospital's staff (and a dispatcher unless
    ``dispatcher_too`` is False); ``refusal`` says who may, for the 403."""
    admission = selectors.admission_by_id(admission_id)
    if admission is None:
        raise NotFound(f"No admission with id {admission_id}.")
    if not _at_hospital(user, admission.hospital_id, dispatcher_too=dispatcher_too):
        raise PermissionDenied(refusal)
    return admission
