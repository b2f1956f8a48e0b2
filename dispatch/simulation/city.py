"""The simulated city: where calls come from, what they are about, how crews take their time.
Figures from ZHENGZHOU.md (the complaint mix there is an assumption, not published data)."""

from __future__ import annotations

from dispatch.models import CaseStatus

# District centres with a weight for how many of the city's calls they get.
DISTRICTS = [
    ("金水区 Jinshui", 34.785, 113.700, 5),
    ("二七区 Erqi", 34.725, 113.640, 4),
    ("中原区 Zhongyuan", 34.760, 113.600, 4),
    ("管城回族区 Guancheng", 34.735, 113.700, 3),
    ("惠济区 Huiji", 34.865, 113.630, 2),
    ("郑东新区 Zhengdong", 34.775, 113.765, 3),
    ("高新区 High-tech zone", 34.805, 113.545, 2),
    ("经开区 Economic development zone", 34.710, 113.745, 2),
    ("航空港区 Airport zone", 34.520, 113.840, 1),
]
# Calls land within about 2 km of the district centre.
SPREAD_LAT, SPREAD_LON = 0.018, 0.022
COMPLAINTS = [
    ("trauma", 25), ("other", 24), ("chest_pain", 10), ("breathing", 10), ("stroke", 8), ("unconscious", 7),
    ("child", 6), ("pregnancy", 4), ("cardiac_arrest", 2), ("unknown", 2), ("newborn", 1), ("burns", 1),
]
ACCURACIES_M = (8.0, 15.0, 30.0, 65.0)

# Relative call rate by local hour: fewest around 04:00, most 09:00-11:00 and 19:00-22:00
# (ZHENGZHOU.md). Normalised so the mean over the day is 1.
_RAW_CURVE = [
    0.55, 0.45, 0.38, 0.33, 0.30, 0.35, 0.55, 0.85, 1.20, 1.55, 1.60, 1.45,
    1.25, 1.15, 1.10, 1.10, 1.15, 1.25, 1.40, 1.55, 1.55, 1.45, 1.10, 0.80,
]
DAILY_CURVE = [value * 24 / sum(_RAW_CURVE) for value in _RAW_CURVE]

# How long a crew takes before pressing the next button, in simulated seconds (low, high).
# Rolling within a minute or so (the national target is 95 % within 3 min); minutes on scene.
CREW_DELAYS_S = {
    CaseStatus.DISPATCHED: (20, 90),      # -> en_route
    CaseStatus.ON_SCENE: (180, 480),      # -> transporting
    CaseStatus.AT_HOSPITAL: (60, 240),    # -> handed_over
    CaseStatus.HANDED_OVER: (30, 180),    # -> available
}
NEXT_BUTTON = {
    CaseStatus.DISPATCHED: "en_route",
    CaseStatus.ON_SCENE: "transporting",
    CaseStatus.AT_HOSPITAL: "handed_over",
    CaseStatus.HANDED_OVER: "available",
}
CREW_STATUSES = [*CREW_DELAYS_S, CaseStatus.EN_ROUTE, CaseStatus.TRANSPORTING]
