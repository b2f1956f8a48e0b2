"""Access to the patient's health archive on a case: the summary for the people on it, added at the
moment of delivery, and the grants behind each read. (Not ``config.healthz``, the liveness probe.)

The summary is never stored in a case, an event or a log line: each recipient's read goes through
an access grant of ``health_records`` tied to this case and to the reader's role on it (the
dispatcher handling it, the crew of the assigned unit, the destination hospital), and each read
appends to the tamper-evident access log (once per reader, grant and archive version: a replayed
event is not a new read). Grants end when the case closes or is cancelled; a grant that expires
while the case stays at the same stage stays expired (``grant_expired``) until a dispatcher renews
it with a reason (``renew_case_grants``) or the case moves on to its next stage.
"""

from __future__ import annotations

import logging
from typing import Any

from dispatch import selectors
from dispatch.models import ACTIVE_CASE_STATUSES, Case, CaseStatus
from dispatch.permissions import is_crew_of, is_dispatcher, is_staff_of
from health_records import services as health
from health_records.crypto import ArchiveCryptoError

logger = logging.getLogger(__name__)

PURPOSE = {"dispatcher": "dispatch triage", "crew": "emergency care", "hospital": "admission"}
HOSPITAL_SEES_FROM = (CaseStatus.TRANSPORTING, CaseStatus.AT_HOSPITAL, CaseStatus.HANDED_OVER)

# The one event that brings a patient to a recipient: the summary rides on it. Not on the
# dispatch stream: every dispatcher console would decrypt, and log a read of, every archive of
# every tap (at 50 taps/s that alone outran the workers); a dispatcher reads the summary when
# they open the case (GET /api/v1/dispatch/cases/{id}), and that read is theirs, logged.
SUMMARY_EVENTS = {
    "ambulance": frozenset({"case.assigned"}),
    "hospital": frozenset({"admission.opened"}),
}


def case_ref(case_id: int) -> str:
    return f"case:{case_id}"


def role_on_case(user, case: Case) -> str | None:
    if case.status not in ACTIVE_CASE_STATUSES:
        return None
    if is_dispatcher(user):
        return "dispatcher"
    if case.ambulance_id and is_crew_of(user, case.ambulance_id):
        return "crew"
    if case.hospital_id and case.status in HOSPITAL_SEES_FROM and is_staff_of(user, case.hospital_id):
        return "hospital"
    return None


def health_summary_for(*, case: Case, reader, override_reason: str | None = None) -> dict[str, Any]:
    """``{"available": true, "summary": {...}}`` or ``{"available": false, "reason": "..."}``.

    Reasons: not_for_self (the caller is not the patient), no_account (a call taken by phone: no
    citizen account, so no archive), not_on_case (case over, or the reader
    has no role on it), no_archive, no_consent (and no override declared), grant_expired (renew it
    with a reason), reader_inactive (a deactivated account), unavailable (a key or ciphertext
    problem: the alarm is logged, no data is shown)."""
    if not case.for_self:
        return {"available": False, "reason": "not_for_self"}
    if case.caller_id is None:
        # A call taken by phone: nobody's account, so no archive to open (and no patient to name).
        return {"available": False, "reason": "no_account"}
    role = role_on_case(reader, case)
    if role is None:
        return {"available": False, "reason": "not_on_case"}
    ref = case_ref(case.pk)
    try:
        health.grant_open(
            case_ref=ref,
            grantee=reader,
            role=role,
            patient=case.caller,
            purpose=PURPOSE[role],
            override_reason=override_reason,
            stage=case.status,
        )
        summary = health.archive_read_for_grant(patient=case.caller, reader=reader, case_ref=ref, purpose=PURPOSE[role])
    except health.AccessDenied as denied:
        return {"available": False, "reason": denied.code}
    except ArchiveCryptoError:
        logger.critical("health summary for case %s withheld: archive cannot be decrypted", case.pk)
        return {"available": False, "reason": "unavailable"}
    if summary is None:
        return {"available": False, "reason": "no_archive"}
    return {"available": True, "summary": summary}


def close_case_grants(case_id: int) -> None:
    health.grants_close(case_ref=case_ref(case_id))


def renew_case_grants(*, case: Case, actor, reason: str) -> list:
    """A dispatcher renews, with a reason, the expired health-access grants of an open case.
    Raises health_records' InvalidGrant / AccessDenied (the API turns them into 4xx)."""
    return health.grant_renew(case_ref=case_ref(case.pk), actor=actor, reason=reason)


def needs_summary(stream: str, event_type: str) -> bool:
    return event_type in SUMMARY_EVENTS.get(stream.split(".", 1)[0], ())


def with_health_summary(*, reader, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The event's data plus this reader's summary of the patient (computed now, for them)."""
    case_id = data.get("case") if event_type.startswith("admission.") else data.get("id")
    case = selectors.case_by_id(case_id)
    if case is None:
        return data
    try:
        block = health_summary_for(case=case, reader=reader)
    except Exception:
        # The event itself must still arrive: a crew without the summary beats a crew without
        # the assignment.
        logger.exception("health summary for case %s could not be added to %s", case_id, event_type)
        block = {"available": False, "reason": "unavailable"}
    return {**data, "health_summary": block}
