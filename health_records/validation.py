"""The rules of a health archive, in one place, for the API and the bulk import alike.

``validate_archive(data)`` returns ``(clean, errors)``. ``errors`` has the shape of a DRF
validation error: ``{"field": ["message"]}``, nested for objects, and keyed by position for list
items (``{"allergies": {"1": {"substance": ["This field is required."]}}}``). Messages never echo
the submitted value, so an error report or a log line carries no health data.

Why not plain DRF serializers: a nested DRF serializer costs ~0.7 ms per archive, which caps a bulk
import at ~1,400 archives/s per core; this validator does the same checks in a few tens of
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


_ID_WEIGHTED_ZERO = ord("0") * sum(_ID_WEIGHTS)
_today_cache: list = [0.0, None]


def _today() -> date:
    """date.today(), refreshed once a second (it costs microseconds and is called per field)."""
    now = time.monotonic()
    if now >= _today_cache[0]:
        _today_cache[1] = date.today()
        _today_cache[0] = now + 1.0
    return _today_cache[1]


def national_id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2, as GB 11643-1999 specifies for the 18th character."""
    total = sum(map(operator.mul, first17.encode(), _ID_WEIGHTS)) - _ID_WEIGHTED_ZERO
    return _ID_CHECK[total % 11]


def parse_national_id(value: str) -> tuple[date, str]:
    """(birth date, "male"/"female") from a valid 18-character ID; raises ValueError with the reason."""
    value = value.strip().upper()
    if not _NATIONAL_ID.match(value):
        raise ValueError("Enter an 18-character PRC resident ID: 17 digits and a check character 0-9 or X.")
    if national_id_check_digit(value[:17]) != value[17]:
        raise ValueError("The check character does not match: the ID is mistyped.")
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise ValueError("The birth date inside the ID is not a real date.") from None
    if born < EARLIEST_BIRTH or born > _today():
        raise ValueError("The birth date inside the ID is out of range.")
    return born, ("male" if int(value[16]) % 2 else "female")


def _text(value, *, max_length: int, required: bool = True) -> str:
    if value is None:
        if required:
            raise _Invalid([NOT_NULL])
        return ""
    if not isinstance(value, str):
        raise _Invalid([NOT_TEXT])
    value = value.strip()
    if required and not value:
        raise _Invalid(["This field may not be blank."])
    if len(value) > max_length:
        raise _Invalid([f"Ensure this field has no more than {max_length} characters."])
    if "\x00" in value:
        raise _Invalid(["Null characters are not allowed."])
    return value


def _choice(value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _Invalid([f"Not a valid choice; use one of: {', '.join(choices)}."])
    return value


def _parse_date(value) -> date:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise _Invalid(["Date has wrong format. Use YYYY-MM-DD."])
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Invalid(["Not a real date."]) from None


def _date(value) -> str | None:
    if value is None:
        return None
    _parse_date(value)
    return value


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


def _contact_phone(value, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise _Invalid([REQUIRED])
        return ""
    if not isinstance(value, str):
        raise _Invalid([NOT_TEXT])
    compact = _SPACES.sub("", value) if " " in value or "\t" in value else value
    if not _CONTACT_PHONE.match(compact):
        raise _Invalid(["Enter a phone number: digits, optionally + and dashes, 5-20 characters."])
    return compact


def _object(value, spec: dict[str, tuple], *, allow_null: bool = False):
    """``spec``: name -> (reader, required, default)."""
    if value is None:
        if allow_null:
            return None
        raise _Invalid([NOT_NULL])
    if not isinstance(value, dict):
        raise _Invalid([NOT_OBJECT])
    clean: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    if not value.keys() <= spec.keys():
        for key in value:
            if key not in spec:
                errors[str(key)] = [UNKNOWN]
    for name, (reader, required, default) in spec.items():
        if name not in value:
            if required:
                errors[name] = [REQUIRED]
            else:
                clean[name] = default
            continue
        try:
            clean[name] = reader(value[name])
        except _Invalid as exc:
            errors[name] = exc.detail
    if errors:
        raise _Invalid(errors)
    return clean


def _list(value, reader, *, max_items: int):
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
            clean.append(reader(item))
        except _Invalid as exc:
            errors[str(index)] = exc.detail
    if errors:
        raise _Invalid(errors)
    return clean


def _item_text(value):
    return _text(value, max_length=ITEM_MAX)


def _bool(value) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(["Must be true or false."])
    return value


def _year(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1900 <= value <= _today().year:
        raise _Invalid([f"Enter a year between 1900 and {_today().year}."])
    return value


_ALLERGY = {
    "substance": (_item_text, True, None),
    "reaction": (lambda v: _text(v, max_length=ITEM_MAX, required=False), False, ""),
    "severity": (lambda v: None if v is None else _choice(v, SEVERITIES), False, None),
}
_MEDICATION = {
    "name": (_item_text, True, None),
    "dose": (lambda v: _text(v, max_length=ITEM_MAX, required=False), False, ""),
}
_SURGERY = {
    "name": (_item_text, True, None),
    "year": (_year, False, None),
}
_CONTACT = {
    "name": (lambda v: _text(v, max_length=NAME_MAX), True, None),
    "relation": (lambda v: _text(v, max_length=50), True, None),
    "phone": (_contact_phone, True, None),
}
_DOCTOR = {
    "name": (lambda v: _text(v, max_length=NAME_MAX), True, None),
    "phone": (lambda v: _contact_phone(v, required=False), False, ""),
}
_BLOOD = {
    "abo": (lambda v: _choice(v, ABO_GROUPS), False, "unknown"),
    "rh": (lambda v: _choice(v, RH_FACTORS), False, "unknown"),
}
_PREGNANCY = {
    "status": (lambda v: _choice(v, PREGNANCY_STATUSES), True, None),
    "due_date": (_date, False, None),
}
UNKNOWN_BLOOD = {"abo": "unknown", "rh": "unknown"}


def _dob(value):
    if value is None:
        return None
    born = _parse_date(value)
    if born > _today():
        raise _Invalid(["Date of birth cannot be in the future."])
    if born < EARLIEST_BIRTH:
        raise _Invalid(["Date of birth cannot be before 1900-01-01."])
    return value


def _national_id(value):
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Invalid([NOT_TEXT])
    try:
        parse_national_id(value)
    except ValueError as exc:
        raise _Invalid([str(exc)]) from None
    return value.strip().upper()


def _pregnancy(value):
    clean = _object(value, _PREGNANCY, allow_null=True)
    if clean and clean["due_date"] is not None:
        if clean["status"] != "pregnant":
            raise _Invalid({"due_date": ["Give a due date only when the status is pregnant."]})
        due, today = date.fromisoformat(clean["due_date"]), _today()
        if not today - timedelta(days=60) <= due <= today + timedelta(days=300):
            raise _Invalid({"due_date": ["A due date lies within 60 days past to 300 days ahead."]})
    return clean


_FIELDS: dict[str, tuple] = {
    "name": (lambda v: _text(v, max_length=NAME_MAX), True, None),
    "sex": (lambda v: _choice(v, SEXES), False, "unknown"),
    "date_of_birth": (_dob, False, None),
    "national_id": (_national_id, False, None),
    "phone": (_mobile, False, None),
    "blood_type": (lambda v: dict(UNKNOWN_BLOOD) if v is None else _object(v, _BLOOD), False, UNKNOWN_BLOOD),
    "allergies": (lambda v: _list(v, lambda i: _object(i, _ALLERGY), max_items=LIST_MAX), False, []),
    "chronic_conditions": (lambda v: _list(v, _item_text, max_items=LIST_MAX), False, []),
    "medications": (lambda v: _list(v, lambda i: _object(i, _MEDICATION), max_items=LIST_MAX), False, []),
    "past_surgeries": (lambda v: _list(v, lambda i: _object(i, _SURGERY), max_items=LIST_MAX), False, []),
    "implanted_devices": (lambda v: _list(v, _item_text, max_items=DEVICES_MAX), False, []),
    "pregnancy": (_pregnancy, False, None),
    "emergency_contacts": (
        lambda v: _list(v, lambda i: _object(i, _CONTACT), max_items=CONTACTS_MAX),
        False,
        [],
    ),
    "family_doctor": (lambda v: _object(v, _DOCTOR, allow_null=True), False, None),
    "advance_directives": (lambda v: _text(v, max_length=TEXT_MAX, required=False), False, ""),
    "notes": (lambda v: _text(v, max_length=TEXT_MAX, required=False), False, ""),
}


_ALLOWED = dict.fromkeys(INPUT_FIELDS)


def validate_archive(data, *, extra: tuple[str, ...] = ()) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Check an archive. Returns ``(clean, {})`` or ``(None, errors)``.

    ``clean`` has every field of ARCHIVE_FIELDS (defaults filled in) plus
    ``consent_share_with_120``. Keys listed in ``extra`` are allowed and left to the caller.
    """
    if not isinstance(data, dict):
        return None, {"non_field_errors": ["Send a JSON object."]}
    clean: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    if not data.keys() <= _ALLOWED.keys():
        for key in data:
            if key not in _ALLOWED and key not in extra:
                errors[str(key)] = [UNKNOWN]
    for name, (reader, required, default) in _FIELDS.items():
        if name not in data:
            if required:
                errors[name] = [REQUIRED]
            else:
                clean[name] = _copy(default)
            continue
        try:
            clean[name] = reader(data[name])
        except _Invalid as exc:
            errors[name] = exc.detail
    try:
        clean["consent_share_with_120"] = _bool(data.get("consent_share_with_120", False))
    except _Invalid as exc:
        errors["consent_share_with_120"] = exc.detail
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


def _copy(value):
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


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
