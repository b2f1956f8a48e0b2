"""The centre's priority policy: how soon minutes decide, from what the tap or the call says.

Priority 1 = immediately life-threatening … 4 = non-urgent (dispatch.models.Priority).

- The complaint sets the base (``PRIORITY_BY_COMPLAINT``, settings; the defaults below).
- The caller's answers to the call-taker's first questions may RAISE it, never lower it:
  not conscious → 1; not breathing normally → 1; heavy bleeding → 1 (a haemorrhage that soaks
  through is lethal within minutes, like an arrest, so it ranks with them rather than with
  "trauma"; EMD protocols code serious haemorrhage at their highest ambulance response too).
- The health archive may raise it too, but only where a grant already allows the read: at the
  dispatcher's own read of the case (GET /api/v1/dispatch/cases/{id}), which decrypts the summary
  anyway. The tap path never decrypts (issue 9 wants tap CPU halved, and a tap holds no grant).
  The reason then says "health archive → N" and never names the condition: the reason travels in
  event rows, and health data is never stored in plaintext.
- Each verdict carries its ``basis`` beside the English ``reason``: the same grounds as data
  ({"kind": "complaint", "complaint": "chest_pain", "priority": 1}, …), because one event payload
  reaches every listener and each console must render it in its own page's language. The reason
  stays for the clients that already read it.
- Nothing here lowers a priority: a later answer, a re-derivation or an archive read takes the
  more urgent of the current and the derived value, so a dispatcher's override (the one way to
  lower it) is never undone by a caller's correction.

Pure functions only: this module is imported by config.settings (to parse the policy) and must
not import models at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from django.core.exceptions import ImproperlyConfigured

# dispatch.models.Complaint values (tests/test_priority.py proves the two lists equal).
COMPLAINTS = (
    "unknown", "chest_pain", "stroke", "trauma", "breathing", "unconscious", "cardiac_arrest",
    "pregnancy", "newborn", "child", "burns", "other",
)
DEFAULT_PRIORITY_BY_COMPLAINT: dict[str, int] = {
    # Minutes decide.
    "cardiac_arrest": 1, "unconscious": 1, "chest_pain": 1, "stroke": 1,
    # Urgent; a tap with no complaint may be the worst kind, so it is not left at 3.
    "breathing": 2, "trauma": 2, "pregnancy": 2, "newborn": 2, "burns": 2, "unknown": 2,
    "child": 3, "other": 3,
}
PRIORITIES = (1, 2, 3, 4)

# The call-taker's first questions, and the answer that makes each one priority 1.
QUESTIONS: dict[str, tuple[bool, str]] = {
    "conscious": (False, "not conscious"),
    "breathing_normally": (False, "not breathing normally"),
    "heavy_bleeding": (True, "heavy bleeding"),
}
ANSWER_RAISES_TO = 1

COMPLAINT_LABELS = {
    "unknown": "unknown", "chest_pain": "chest pain", "stroke": "stroke signs", "trauma": "injury",
    "breathing": "breathing problem", "unconscious": "unconscious", "cardiac_arrest": "cardiac arrest",
    "pregnancy": "pregnancy / childbirth", "newborn": "newborn", "child": "sick child", "burns": "burns",
    "other": "other",
}


def parse_priority_policy(value: str | None) -> dict[str, int]:
    """``PRIORITY_BY_COMPLAINT="chest_pain=1,child=2"``: entries override the defaults, unlisted
    complaints keep theirs. A typo stops the start, naming the variable (a silent default would
    rank a cardiac arrest wrongly for a whole shift)."""
    policy = dict(DEFAULT_PRIORITY_BY_COMPLAINT)
    if value is None or not value.strip():
        return policy
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, number = item.partition("=")
        name, number = name.strip(), number.strip()
        if not sep or name not in COMPLAINTS:
            raise ImproperlyConfigured(
                f"PRIORITY_BY_COMPLAINT: {item!r} is not complaint=priority with a complaint among {', '.join(COMPLAINTS)}"
            )
        if number not in {str(p) for p in PRIORITIES}:
            raise ImproperlyConfigured(f"PRIORITY_BY_COMPLAINT: {item!r}: the priority must be 1, 2, 3 or 4")
        policy[name] = int(number)
    return policy


def _policy() -> Mapping[str, int]:
    from django.conf import settings

    return getattr(settings, "PRIORITY_BY_COMPLAINT", DEFAULT_PRIORITY_BY_COMPLAINT)


# What a basis's "kind" may be; the consoles render each one (dispatch/static/onekey/priority_basis.js).
BASIS_KINDS = ("complaint", "answers", "archive", "dispatcher")


class Verdict(NamedTuple):
    """A priority with its grounds: ``reason`` in English words (the wire's priority_reason),
    ``basis`` the same as data for a page to word in its own language."""

    priority: int
    reason: str
    basis: dict[str, Any]


def derive(*, complaint: str, answers: Mapping[str, Any] | None = None) -> Verdict:
    """The verdict of the complaint and the caller's answers, e.g.
    (1, "complaint: chest pain → 1", {"kind": "complaint", "complaint": "chest_pain", "priority": 1}) or
    (1, "not breathing normally → 1", {"kind": "answers", "answers": ["breathing_normally"], "priority": 1})."""
    policy = _policy()
    base = policy.get(complaint, policy.get("unknown", 2))
    raised = [key for key, (alarming, _) in QUESTIONS.items() if (answers or {}).get(key) is alarming]
    if raised and ANSWER_RAISES_TO < base:
        words = " and ".join(QUESTIONS[key][1] for key in raised)
        basis = {"kind": "answers", "answers": raised, "priority": ANSWER_RAISES_TO}
        return Verdict(ANSWER_RAISES_TO, f"{words} → {ANSWER_RAISES_TO}", basis)
    basis = {"kind": "complaint", "complaint": complaint, "priority": base}
    return Verdict(base, f"complaint: {COMPLAINT_LABELS.get(complaint, complaint)} → {base}", basis)


def dispatcher_verdict(*, priority: int, who: str, words: str) -> Verdict:
    """A dispatcher's override: their own words, which no page translates, after who said it."""
    return Verdict(priority, f"{who}: {words}", {"kind": "dispatcher", "by": who, "priority": priority})


def more_urgent(current: Verdict, derived: Verdict) -> Verdict:
    """The more urgent of two verdicts; the current one on a tie (its reason stands)."""
    return derived if derived.priority < current.priority else current


# --- the archive, read for a dispatcher who may read it ------------------------------------------

# Words in an archive's conditions, devices or pregnancy that make a complaint more urgent. Kept
# short on purpose: a wrong raise costs a unit, a missed one is what the dispatcher's own reading
# of the summary is for.
_CARDIAC = ("coronary", "heart", "myocard", "angina", "arrhythm", "pacemaker", "defibrillator", "冠心病", "心脏", "心衰", "心肌", "心律", "起搏器")
_RESPIRATORY = ("asthma", "copd", "pulmonary", "哮喘", "慢阻肺", "肺")
ARCHIVE_RAISES: tuple[tuple[tuple[str, ...], frozenset[str], int], ...] = (
    # A known heart patient who cannot breathe, or collapsed, or "something else": treat as cardiac.
    (_CARDIAC, frozenset({"breathing", "other", "unknown"}), 1),
    # A known asthma / COPD patient with a breathing problem.
    (_RESPIRATORY, frozenset({"breathing"}), 1),
)
PREGNANCY_RAISE = (frozenset({"trauma", "other", "unknown", "child", "burns", "breathing"}), 2)


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value.lower()]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _texts(item)]
    return [str(value).lower()]


def archive_raise(*, complaint: str, summary: Mapping[str, Any]) -> int | None:
    """The priority the decrypted summary calls for with this complaint, or None. Never returns
    anything that names the condition (see the module docstring)."""
    texts = " ".join(_texts(summary.get("chronic_conditions")) + _texts(summary.get("implanted_devices")))
    best: int | None = None
    for words, complaints, priority in ARCHIVE_RAISES:
        if complaint in complaints and any(word in texts for word in words):
            best = priority if best is None else min(best, priority)
    pregnancy = summary.get("pregnancy")
    if isinstance(pregnancy, Mapping) and pregnancy.get("status") == "pregnant":
        complaints, priority = PREGNANCY_RAISE
        if complaint in complaints:
            best = priority if best is None else min(best, priority)
    return best


def archive_reason(priority: int) -> str:
    return f"health archive → {priority}"


def archive_verdict(priority: int) -> Verdict:
    # The basis names no condition either, for the same reason as the words.
    return Verdict(priority, archive_reason(priority), {"kind": "archive", "priority": priority})
