"""The rules of a health archive, in one place, for the API and the bulk import alike.

``validate_archive(data)`` returns ``(clean, errors)``. ``errors`` has the shape of a DRF
validation error: ``{"field": ["message"]}``, nested for objects, and keyed by position for list
items (``{"allergies": {"1": {"substance": ["This field is required."]}}}``). Messages never echo
the submitted value, so an error report or a log line carries no health data.

Why not plain DRF serializers: a nested DRF serializer costs ~0.7 ms per archive, which caps a bulk
import at ~1,400 archives/s per core; this validator does the same checks in about ten
microseconds. ``health_records.serializers.ArchiveSerializer`` wraps it for the API and the schema.
"""

from __future__ import annotations

import operator
import re
import time
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any

from config.phones import normalize_mobile

SEXES = ("male", "female", "other", "unknown")
ABO_GROUPS = ("A", "B", "AB", "O", "unknown")
RH_FACTORS = ("positive", "negative", "unknown")
SEVERITIES = ("mild", "moderate", "severe")
PREGNANCY_STATUSES = ("pregnant", "not_pregnant", "unknown")

NAME_MAX = 100
TEXT_MAX = 2000
ITEM_MAX = 200
LIST_MAX = 50
DEVICES_MAX = 20
CONTACTS_MAX = 5
EARLIEST_BIRTH = date(1900, 1, 1)

ARCHIVE_FIELDS = (
    "name",
    "sex",
    "date_of_birth",
    "national_id",
    "phone",
    "blood_type",
    "allergies",
    "chronic_conditions",
    "medications",
    "past_surgeries",
    "implanted_devices",
    "pregnancy",
    "emergency_contacts",
    "family_doctor",
    "advance_directives",
    "notes",
)
INPUT_FIELDS = ARCHIVE_FIELDS + ("consent_share_with_120",)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NATIONAL_ID = re.compile(r"^[1-9]\d{16}[\dX]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_CONTACT_PHONE = re.compile(r"^\+?\d[\d-]{4,19}$")
_SPACES = re.compile(r"\s")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
NOT_TEXT = "Not a valid string."
NOT_LIST = "Expected a list of items."
NOT_OBJECT = "Expected an object."
UNKNOWN = "Unknown field."


class _Invalid(Exception):
    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


# The readers below are written out per section rather than built from a generic field table:
# the bulk import runs them for every row, and the table's per-field closures and lookups cost more
# than the checks themselves. try/except around a reader costs nothing unless it raises.
# A reader gets _MISSING for an absent required key, so "required" and "null" stay two messages.
_MISSING = object()

BLANK = "This field may not be blank."
NUL = "Null characters are not allowed."
_SEX_SET = frozenset(SEXES)
_ABO_SET = frozenset(ABO_GROUPS)
_RH_SET = frozenset(RH_FACTORS)
_SEVERITY_SET = frozenset(SEVERITIES)
_PREGNANCY_SET = frozenset(PREGNANCY_STATUSES)


def _choice_error(choices: tuple[str, ...]) -> str:
    return f"Not a valid choice; use one of: {', '.join(choices)}."


_SEX_ERROR = _choice_error(SEXES)
_ABO_ERROR = _choice_error(ABO_GROUPS)
_RH_ERROR = _choice_error(RH_FACTORS)
_SEVERITY_ERROR = _choice_error(SEVERITIES)
_PREGNANCY_ERROR = _choice_error(PREGNANCY_STATUSES)

_ID_WEIGHTED_ZERO = ord("0") * sum(_ID_WEIGHTS)
_today_cache: list = [0.0, None]


def _today() -> date:
    """date.today(), refreshed once a second (it costs microseconds and is needed per archive)."""
    now = time.monotonic()
    if now >= _today_cache[0]:
        _today_cache[1] = date.today()
        _today_cache[0] = now + 1.0
    return _today_cache[1]


def national_id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2, as GB 11643-1999 specifies for the 18th character."""
    if len(first17) == 17 and first17.isascii() and first17.isdigit():
        # The weights are 2^17 ... 2^1 mod 11 and 13 = 2 (mod 11), so the weighted sum is twice the
        # digits read in base 13 (one C call instead of 17 multiplications in Python).
        return _ID_CHECK[2 * int(first17, 13) % 11]
    # Anything else (a wrong length, or another script's digits, which the ID pattern's \d lets
    # through) keeps the byte-wise sum it always had, so no verdict changes.
    total = sum(map(operator.mul, first17.encode(), _ID_WEIGHTS)) - _ID_WEIGHTED_ZERO
    return _ID_CHECK[total % 11]


def parse_national_id(value: str) -> tuple[date, str]:
    """(birth date, "male"/"female") from a valid 18-character ID; raises ValueError with the reason."""
    value = value.strip().upper()
    return _check_normalised_id(value, _today()), ("male" if int(value[16]) % 2 else "female")


def _check_normalised_id(value: str, today: date) -> date:
    """The birth date of an ID already stripped and upper-cased; raises ValueError with the reason."""
    if not _NATIONAL_ID.match(value):
        raise ValueError("Enter an 18-character PRC resident ID: 17 digits and a check character 0-9 or X.")
    if national_id_check_digit(value[:17]) != value[17]:
        raise ValueError("The check character does not match: the ID is mistyped.")
    try:
        # fromisoformat reads YYYYMMDD but only in ASCII digits; \d also lets other scripts' digits in.
        if value.isascii():
            born = date.fromisoformat(value[6:14])
        else:
            born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise ValueError("The birth date inside the ID is not a real date.") from None
    if born < EARLIEST_BIRTH or born > today:
        raise ValueError("The birth date inside the ID is out of range.")
    return born


def _text(value, max_length: int) -> str:
    """A required string, stripped: not blank, not too long, no NUL."""
    if not isinstance(value, str):
        raise _Invalid([REQUIRED if value is _MISSING else NOT_NULL if value is None else NOT_TEXT])
    value = value.strip()
    if not value:
        raise _Invalid([BLANK])
    if len(value) > max_length:
        raise _Invalid([f"Ensure this field has no more than {max_length} characters."])
    if "\x00" in value:
        raise _Invalid([NUL])
    return value


def _optional_text(value, max_length: int) -> str:
    """A string that may be absent, null or blank (then "")."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Invalid([NOT_TEXT])
    value = value.strip()
    if len(value) > max_length:
        raise _Invalid([f"Ensure this field has no more than {max_length} characters."])
    if "\x00" in value:
        raise _Invalid([NUL])
    return value


def _parse_date(value) -> date:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise _Invalid(["Date has wrong format. Use YYYY-MM-DD."])
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Invalid(["Not a real date."]) from None


def _mobile(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Invalid([NOT_TEXT])
    if len(value) == 11 and _MOBILE.match(value):
        return value  # the common case: already 11 plain digits
    digits = normalize_mobile(value)
    if digits is None:
        raise _Invalid(["Enter a mainland China mobile number, e.g. 13800138000."])
    return digits


def _contact_phone(value, required: bool) -> str:
    if value is None or value is _MISSING or value == "":
        if required:
            raise _Invalid([REQUIRED])
        return ""
    if not isinstance(value, str):
        raise _Invalid([NOT_TEXT])
    compact = _SPACES.sub("", value) if " " in value or "\t" in value else value
    if not _CONTACT_PHONE.match(compact):
        raise _Invalid(["Enter a phone number: digits, optionally + and dashes, 5-20 characters."])
    return compact


def _year(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1900 <= value <= _today().year:
        raise _Invalid([f"Enter a year between 1900 and {_today().year}."])
    return value


def _object_errors(value, keys: frozenset) -> dict[str, Any]:
    """The start of every nested object: it must be one, and unknown keys are errors (first, in
    the submitted order). Returns the error dict for the object's own fields to add to."""
    if type(value) is dict and value.keys() <= keys:  # the usual case, first
        return {}
    if not isinstance(value, dict):
        raise _Invalid([NOT_NULL] if value is None else [NOT_OBJECT])
    if value.keys() <= keys:
        return {}
    return {str(key): [UNKNOWN] for key in value if key not in keys}


def _read(clean: dict, errors: dict, key: str, read, *args) -> None:
    """``clean[key] = read(*args)``, or its error under ``key``: every field's errors are collected,
    not only the first one's."""
    try:
        clean[key] = read(*args)
    except _Invalid as exc:
        errors[key] = exc.detail


def _finished(clean, errors: dict):
    if errors:
        raise _Invalid(errors)
    return clean


def _object_list(value, read, max_items: int) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid([NOT_LIST])
    if len(value) > max_items:
        raise _Invalid([f"Ensure this field has no more than {max_items} items."])
    clean = []
    errors: dict[str, Any] = {}
    for index, item in enumerate(value):
        try:
            clean.append(read(item))
        except _Invalid as exc:
            errors[str(index)] = exc.detail
    return _finished(clean, errors)


def _item_text(item) -> str:
    return _text(item, ITEM_MAX)


def _text_list(value, max_items: int) -> list:
    return _object_list(value, _item_text, max_items)


UNKNOWN_BLOOD = {"abo": "unknown", "rh": "unknown"}
_BLOOD_KEYS = frozenset(UNKNOWN_BLOOD)


def _blood_type(value) -> dict[str, str]:
    if value is None:
        return dict(UNKNOWN_BLOOD)
    errors = _object_errors(value, _BLOOD_KEYS)
    abo = value.get("abo", "unknown")
    if not (isinstance(abo, str) and abo in _ABO_SET):
        errors["abo"] = [_ABO_ERROR]
    rh = value.get("rh", "unknown")
    if not (isinstance(rh, str) and rh in _RH_SET):
        errors["rh"] = [_RH_ERROR]
    if errors:
        raise _Invalid(errors)
    return {"abo": abo, "rh": rh}


_ALLERGY_KEYS = frozenset(("substance", "reaction", "severity"))


def _allergy(item) -> dict[str, Any]:
    errors = _object_errors(item, _ALLERGY_KEYS)
    clean: dict[str, Any] = {}
    _read(clean, errors, "substance", _text, item.get("substance", _MISSING), ITEM_MAX)
    _read(clean, errors, "reaction", _optional_text, item.get("reaction"), ITEM_MAX)
    severity = item.get("severity")
    if severity is None or (isinstance(severity, str) and severity in _SEVERITY_SET):
        clean["severity"] = severity
    else:
        errors["severity"] = [_SEVERITY_ERROR]
    return _finished(clean, errors)


_MEDICATION_KEYS = frozenset(("name", "dose"))


def _medication(item) -> dict[str, Any]:
    errors = _object_errors(item, _MEDICATION_KEYS)
    clean: dict[str, Any] = {}
    _read(clean, errors, "name", _text, item.get("name", _MISSING), ITEM_MAX)
    _read(clean, errors, "dose", _optional_text, item.get("dose"), ITEM_MAX)
    return _finished(clean, errors)


_SURGERY_KEYS = frozenset(("name", "year"))


def _surgery(item) -> dict[str, Any]:
    errors = _object_errors(item, _SURGERY_KEYS)
    clean: dict[str, Any] = {}
    _read(clean, errors, "name", _text, item.get("name", _MISSING), ITEM_MAX)
    _read(clean, errors, "year", _year, item.get("year"))
    return _finished(clean, errors)


_CONTACT_KEYS = frozenset(("name", "relation", "phone"))


def _contact(item) -> dict[str, Any]:
    errors = _object_errors(item, _CONTACT_KEYS)
    clean: dict[str, Any] = {}
    _read(clean, errors, "name", _text, item.get("name", _MISSING), NAME_MAX)
    _read(clean, errors, "relation", _text, item.get("relation", _MISSING), 50)
    _read(clean, errors, "phone", _contact_phone, item.get("phone", _MISSING), True)
    return _finished(clean, errors)


_DOCTOR_KEYS = frozenset(("name", "phone"))


def _family_doctor(value) -> dict[str, Any] | None:
    if value is None:
        return None
    errors = _object_errors(value, _DOCTOR_KEYS)
    clean: dict[str, Any] = {}
    _read(clean, errors, "name", _text, value.get("name", _MISSING), NAME_MAX)
    _read(clean, errors, "phone", _contact_phone, value.get("phone"), False)
    return _finished(clean, errors)


_PREGNANCY_KEYS = frozenset(("status", "due_date"))


def _pregnancy(value) -> dict[str, Any] | None:
    if value is None:
        return None
    errors = _object_errors(value, _PREGNANCY_KEYS)
    status = value.get("status", _MISSING)
    if not (isinstance(status, str) and status in _PREGNANCY_SET):
        errors["status"] = [REQUIRED if status is _MISSING else _PREGNANCY_ERROR]
    due_date = value.get("due_date")
    if due_date is not None:
        try:
            due = _parse_date(due_date)
        except _Invalid as exc:
            errors["due_date"] = exc.detail
    if errors:
        raise _Invalid(errors)
    if due_date is not None:
        if status != "pregnant":
            raise _Invalid({"due_date": ["Give a due date only when the status is pregnant."]})
        today = _today()
        if not today - timedelta(days=60) <= due <= today + timedelta(days=300):
            raise _Invalid({"due_date": ["A due date lies within 60 days past to 300 days ahead."]})
    return {"status": status, "due_date": due_date}


def _dob(value, today: date) -> str | None:
    if value is None:
        return None
    born = _parse_date(value)
    if born > today:
        raise _Invalid(["Date of birth cannot be in the future."])
    if born < EARLIEST_BIRTH:
        raise _Invalid(["Date of birth cannot be before 1900-01-01."])
    return value


def _national_id(value, today: date) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Invalid([NOT_TEXT])
    value = value.strip().upper()
    try:
        _check_normalised_id(value, today)
    except ValueError as exc:
        raise _Invalid([str(exc)]) from None
    return value


_ALLOWED = frozenset(INPUT_FIELDS)
_allowed_with_extra: dict[tuple[str, ...], frozenset] = {}


def validate_archive(data, *, extra: tuple[str, ...] = ()) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Check an archive. Returns ``(clean, {})`` or ``(None, errors)``.

    ``clean`` has every field of ARCHIVE_FIELDS (defaults filled in) plus
    ``consent_share_with_120``. Keys listed in ``extra`` are allowed and left to the caller.
    """
    if not isinstance(data, dict):
        return None, {"non_field_errors": ["Send a JSON object."]}
    errors: dict[str, Any] = {}
    allowed = _ALLOWED
    if extra:
        allowed = _allowed_with_extra.get(extra)
        if allowed is None:
            allowed = _allowed_with_extra[extra] = _ALLOWED.union(extra)
    if not data.keys() <= allowed:
        for key in data:
            if key not in allowed:
                errors[str(key)] = [UNKNOWN]

    # Fields in ARCHIVE_FIELDS order (the order of ``clean``). An absent optional field reads as
    # null, whose clean value is the field's default.
    get = data.get
    today = _today()
    clean: dict[str, Any] = {}
    _read(clean, errors, "name", _text, get("name", _MISSING), NAME_MAX)
    sex = get("sex", "unknown")
    if isinstance(sex, str) and sex in _SEX_SET:
        clean["sex"] = sex
    else:
        errors["sex"] = [_SEX_ERROR]
    _read(clean, errors, "date_of_birth", _dob, get("date_of_birth"), today)
    _read(clean, errors, "national_id", _national_id, get("national_id"), today)
    _read(clean, errors, "phone", _mobile, get("phone"))
    _read(clean, errors, "blood_type", _blood_type, get("blood_type"))
    _read(clean, errors, "allergies", _object_list, get("allergies"), _allergy, LIST_MAX)
    _read(clean, errors, "chronic_conditions", _text_list, get("chronic_conditions"), LIST_MAX)
    _read(clean, errors, "medications", _object_list, get("medications"), _medication, LIST_MAX)
    _read(clean, errors, "past_surgeries", _object_list, get("past_surgeries"), _surgery, LIST_MAX)
    _read(clean, errors, "implanted_devices", _text_list, get("implanted_devices"), DEVICES_MAX)
    _read(clean, errors, "pregnancy", _pregnancy, get("pregnancy"))
    _read(clean, errors, "emergency_contacts", _object_list, get("emergency_contacts"), _contact, CONTACTS_MAX)
    _read(clean, errors, "family_doctor", _family_doctor, get("family_doctor"))
    _read(clean, errors, "advance_directives", _optional_text, get("advance_directives"), TEXT_MAX)
    _read(clean, errors, "notes", _optional_text, get("notes"), TEXT_MAX)
    consent = get("consent_share_with_120", False)
    if isinstance(consent, bool):
        clean["consent_share_with_120"] = consent
    else:
        errors["consent_share_with_120"] = ["Must be true or false."]

    nid = clean.get("national_id")
    if nid and not errors:
        # Already a valid ID: digits 7-14 are the birth date, the 17th is odd for men.
        dob = clean["date_of_birth"]
        if dob is not None and dob.replace("-", "") != nid[6:14]:
            errors["national_id"] = ["The birth date inside the ID does not match date_of_birth."]
        elif clean["sex"] in ("male", "female") and clean["sex"] != ("male" if int(nid[16]) % 2 else "female"):
            errors["national_id"] = ["The sex digit of the ID does not match sex."]
    if errors:
        return None, errors
    return clean, {}


def parse_timestamp(value) -> datetime:
    """An aware ISO 8601 timestamp (import rows' ``verified_at``)."""
    if not isinstance(value, str):
        raise ValueError("Use an ISO 8601 timestamp with a time zone.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("Use an ISO 8601 timestamp with a time zone.") from None
    if parsed.tzinfo is None:
        raise ValueError("Use an ISO 8601 timestamp with a time zone.")
    return parsed


def flatten_errors(errors, prefix: str = "") -> list[str]:
    """``{"allergies": {"1": {"substance": ["..."]}}}`` -> ``["allergies.1.substance: ..."]``."""
    lines: list[str] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            lines += flatten_errors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(errors, list):
        for message in errors:
            if isinstance(message, (dict, list)):
                lines += flatten_errors(message, prefix)
            else:
                lines.append(f"{prefix}: {message}" if prefix else str(message))
    return lines


REASON_MIN = 10
REASON_MIN_LETTERS = 5
REASON_MAX = 500


def reason_problem(value) -> str | None:
    """Why ``value`` is not an acceptable reason for a person's decision about health access
    (renewing an expired grant), or None. Read later by a reviewer, so it must be words: at least
    10 characters, 5 or more of them letters of any script, not one character repeated, no control
    characters. The same rule as the API's break-glass reason (dispatch.inputs.validate_reason_words);
    repeated here because this app never imports dispatch."""
    if not isinstance(value, str) or not value.strip():
        return "A reason is required."
    text = value.strip()
    if any(unicodedata.category(char) == "Cc" and char not in "\n\t" for char in text):
        return "The reason contains control characters."
    if len(text) > REASON_MAX:
        return f"Keep the reason to at most {REASON_MAX} characters."
    letters = [char for char in text if char.isalpha()]
    if len(text) < REASON_MIN or len(letters) < REASON_MIN_LETTERS:
        return (f"Say why in words: at least {REASON_MIN} characters, {REASON_MIN_LETTERS} or more of them letters.")
    if len({char.casefold() for char in letters}) < 3:
        return "Say why in words, not a repeated character."
    return None
