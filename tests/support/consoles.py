"""What a console does with a stream (tests/test_event_contract.py proves it for every event type):
take the REST snapshot its stream starts from, apply each event (keyed by entity id, the event's
data replaces the entity: nothing is a diff), and compare with a fresh snapshot."""

from __future__ import annotations

from dispatch.models import ACTIVE_CASE_STATUSES, UNIT_HOLDING_STATUSES

ACTIVE = {str(s) for s in ACTIVE_CASE_STATUSES}
HOLDING = {str(s) for s in UNIT_HOLDING_STATUSES}
OPEN_ADMISSION = {"incoming", "acknowledged", "arrived"}
# Derived per reader or per ranking, not entity state; consoles refetch them (see the module doc).
NOT_STATE = ("health_summary", "suggested_hospitals", "last_seq", "suggested_units")


# --- snapshots, as each console reads them -------------------------------------------------------


def _without(data: dict, keys=NOT_STATE) -> dict:
    return {k: v for k, v in data.items() if k not in keys}


def _alerts(body: dict) -> dict:
    return {a["id"]: _without(a) for a in body["results"]}


def dispatch_snapshot(client) -> tuple[int, dict]:
    # Two snapshots of one stream: resume from the older position (replaying an event onto a
    # newer entity is harmless, every event carries the whole entity).
    alerts = client.get("/api/v1/dispatch/alerts").json()
    body = client.get("/api/v1/dispatch/cases?limit=1000").json()
    return min(alerts["last_seq"], body["last_seq"]), {
        "alerts": _alerts(alerts),
        "cases": {c["id"]: c for c in body["results"]},
        "units": {u["id"]: u for u in body["units"]},
        "hospitals": {h["id"]: h for h in body["hospitals"]},
        # Surge mode, declared or proposed (centre.surge_changed replaces it).
        "centre": body.get("centre"),
        # Silent calls' texts on the listed cases (case.message adds one; a case leaving drops them).
        "messages": {m["id"]: m for m in body.get("messages", [])},
    }


def ambulance_snapshot(client, ambulance_id: int) -> tuple[int, dict]:
    body = client.get(f"/api/v1/ambulances/{ambulance_id}/assignment").json()
    # The suggestions' ranking is refetched, but the hospitals in them are entity state the crew
    # chooses by (ED status, free beds): hospital.status_changed must keep them current.
    hospitals = {s["hospital"]["id"]: s["hospital"] for s in body["suggested_hospitals"]}
    return body["last_seq"], {**_without(body), "hospitals": hospitals}


def hospital_snapshot(client, hospital_id: int) -> tuple[int, dict]:
    alerts = client.get(f"/api/v1/hospitals/{hospital_id}/alerts").json()
    body = client.get(f"/api/v1/hospitals/{hospital_id}/admissions").json()
    return min(alerts["last_seq"], body["last_seq"]), {
        "alerts": _alerts(alerts),
        "hospital": body["hospital"],
        "admissions": {a["id"]: _without(a) for a in body["results"]},
    }


def case_snapshot(client, case_id: int) -> tuple[int, dict]:
    response = client.get(f"/api/v1/cases/{case_id}")
    if response.status_code == 404:
        return 0, {"case": None, "messages": {}}  # before the tap: the stream is empty too
    body = response.json()
    # The texts of a silent call are their own snapshot, read at the same stream's position.
    texts = client.get(f"/api/v1/cases/{case_id}/messages").json()
    assert texts["last_seq"] >= body["last_seq"]
    return body["last_seq"], {"case": _without(body), "messages": {m["id"]: m for m in texts["results"]}}


# --- the reducer a console runs -------------------------------------------------------------------


def _nest_admission(case: dict | None, admission: dict) -> None:
    """A case shows its newest admission (the highest id, as the selector orders them)."""
    if case is None or case["id"] != admission["case"]:
        return
    current = case.get("admission")
    if current is None or current["id"] <= admission["id"]:
        case["admission"] = admission


def apply_event(kind: str, state: dict, event_type: str, data: dict, *, owner: int | None = None) -> None:
    entity = event_type.split(".", 1)[0]
    if entity == "alert":
        # Raised alerts are listed; a cleared one leaves the list.
        assert kind in ("dispatch", "hospital"), kind
        if data["state"] == "raised":
            state["alerts"][data["id"]] = _without(data)
        else:
            state["alerts"].pop(data["id"], None)
        return
    if event_type == "case.message":
        # The data is the message, not the case: it joins the case's texts.
        assert kind in ("dispatch", "case"), kind
        state["messages"][data["id"]] = data
        return
    if kind == "dispatch":
        if entity == "case":
            if data["status"] in ACTIVE:
                state["cases"][data["id"]] = data
            else:
                state["cases"].pop(data["id"], None)
                state["messages"] = {k: m for k, m in state["messages"].items() if m["case"] != data["id"]}
        elif entity == "unit":
            state["units"][data["id"]] = data
        elif entity == "admission":
            _nest_admission(state["cases"].get(data["case"]), data)
        elif entity == "hospital":
            state["hospitals"][data["id"]] = data
        elif entity == "centre":
            state["centre"] = data
        else:
            raise AssertionError(f"no dispatch reducer for {event_type}")
    elif kind == "ambulance":
        if entity == "case":
            ours = data["status"] in HOLDING and (data["ambulance"] or {}).get("id") == owner
            if ours:
                state["case"] = data
            elif state["case"] and state["case"]["id"] == data["id"]:
                state["case"] = None
        elif entity == "unit":
            assert data["id"] == owner
            state["unit"] = data
        elif entity == "admission":
            if data["status"] in OPEN_ADMISSION:
                state["admission"] = data
            elif state["admission"] and state["admission"]["id"] == data["id"]:
                state["admission"] = None
            _nest_admission(state["case"], data)
        elif entity == "hospital":
            if data["id"] in state["hospitals"]:
                state["hospitals"][data["id"]] = data
        else:
            raise AssertionError(f"no ambulance reducer for {event_type}")
    elif kind == "hospital":
        if entity == "admission":
            if data["status"] in OPEN_ADMISSION:
                state["admissions"][data["id"]] = _without(data)
            else:
                state["admissions"].pop(data["id"], None)
        elif entity == "hospital":
            state["hospital"] = data
        else:
            raise AssertionError(f"no hospital reducer for {event_type}")
    elif kind == "case":
        assert entity == "case", event_type
        state["case"] = _without(data)
    else:
        raise AssertionError(kind)


def comparable(kind: str, state: dict, fresh: dict) -> tuple[dict, dict]:
    """Which hospitals a crew is offered follows the case (its place, complaint, the ranking), which
    no event carries: compare the hospitals both hold, and everything else in full."""
    if kind != "ambulance":
        return state, fresh
    both = state["hospitals"].keys() & fresh["hospitals"].keys()
    return (
        {**state, "hospitals": {i: state["hospitals"][i] for i in both}},
        {**fresh, "hospitals": {i: fresh["hospitals"][i] for i in both}},
    )

