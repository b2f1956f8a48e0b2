"""A merged caller still sees help coming (issue 8).

When a dispatcher merges case B into case A (dispatch.surge.case_merge), B is cancelled and A's
unit serves both callers. B's caller may not read A: it is another citizen's case. So B's own case
(GET /api/v1/cases/{B}, /ws/cases/{B}/) carries ``help_coming``: the call sign of A's unit, how far
it has got, and when it reaches *B's* position. Privacy first, it carries nothing else of A: not
its caller, not where A's caller stands (the ETA is computed to B's own position, and the unit's
position is not sent), not the patient's complaint or the hospital they are taken to.
"""

from __future__ import annotations

from dispatch.events import Outgoing, case_stream
from dispatch.models import Case, CaseStatus
from dispatch.selectors import eta_between

# How far the kept case's help has got, in the merged caller's terms. Once the crew leaves the scene
# its patient's journey is that patient's business: the merged caller learns only that it left.
HELP_STATUS = {
    CaseStatus.RECEIVED: "waiting",
    CaseStatus.DISPATCHED: "dispatched",
    CaseStatus.EN_ROUTE: "en_route",
    CaseStatus.ON_SCENE: "on_scene",
    CaseStatus.TRANSPORTING: "left_scene",
    CaseStatus.AT_HOSPITAL: "left_scene",
    CaseStatus.HANDED_OVER: "left_scene",
    CaseStatus.CLOSED: "left_scene",
    # Cancelled without a unit reaching the scene: nobody is coming through that case any more, and
    # the merged caller must know it (call again) rather than wait.
    CaseStatus.CANCELLED: "cancelled",
}
HELP_STATUSES = ("waiting", "dispatched", "en_route", "on_scene", "left_scene", "cancelled")
HEADING_TO_SCENE = (CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE)

# The kept case's events that can change what its merged callers see (its status, its unit, the
# unit's position); the others (triage, hospital, its caller's own fixes or texts) cannot, and are
# not worth a query.
FOLLOWED_EVENTS = frozenset(
    {
        "case.assigned",
        "case.reassigned",
        "case.status_changed",
        "case.cancelled",
        "case.unit_moved",
        "case.details_changed",
        "case.merged",
    }
)


def help_coming(case: Case, *, kept: Case | None = None) -> dict | None:
    """What the caller of a merged case sees of the case that stays; None when not merged.
    ``kept``: that case when the caller already holds it (with its unit), sparing a query."""
    if not case.merged_into_id:
        return None
    if kept is None or kept.pk != case.merged_into_id:
        kept = Case.objects.select_related("ambulance").filter(pk=case.merged_into_id).first()
        if kept is None:
            return None
    unit = kept.ambulance if kept.ambulance_id else None
    eta_s = None
    if unit is not None and kept.status in HEADING_TO_SCENE:
        eta_s = eta_between(unit.lat, unit.lon, case.lat, case.lon)
    return {
        "status": HELP_STATUS.get(kept.status, "waiting"),
        "call_sign": unit.call_sign if unit is not None else None,
        "eta_s": eta_s,
    }


def merged_callers_events(kept: Case, event_type: str) -> list[Outgoing]:
    """The same event on the stream of every case merged into ``kept``, each with its own caller's
    view (so their app redraws from it as from any event of their case)."""
    if event_type not in FOLLOWED_EVENTS:
        return []
    from dispatch.serializers import citizen_case_payload

    merged = Case.objects.filter(merged_into_id=kept.pk).select_related("caller", "ambulance", "hospital")
    return [Outgoing(case_stream(case.pk), event_type, citizen_case_payload(case, kept=kept)) for case in merged]
