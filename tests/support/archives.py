"""A health archive to put and look for: the sample, the words that must never leak, and how to
look for them in a database."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from datetime import date

from django.db import connection

from health_records.synthetic import national_id

URL = "/api/v1/me/health-archive"
LOG_URL = "/api/v1/me/health-archive/access-log"

SAMPLE_NATIONAL_ID = national_id("410105", date(1968, 4, 12), 123)  # 123: odd, a man
SAMPLE_PHONE = "13912340099"
# Words that appear nowhere but in this archive: tests look for them where they must not be.
DISTINCTIVE = [
    "Ouyang Qingfeng",
    "欧阳青峰",
    "Zorblaxamine",
    "Vexillum",
    "Hashimoto-Quokka",
    "Levothyroxquin",
    "Medtronic-Azure-XT",
    "Wenxiu Brightwater",
    "Flowerpot-Marigold",
    "No-Intubation-Sapphire",
    "Appendectomy-Lazuli",
    "Dr Pelagia Moon",
    SAMPLE_NATIONAL_ID,
    SAMPLE_PHONE,
]


def sample_archive(**overrides) -> dict:
    data = {
        "name": "欧阳青峰 Ouyang Qingfeng",
        "sex": "male",
        "date_of_birth": "1968-04-12",
        "national_id": SAMPLE_NATIONAL_ID,
        "phone": SAMPLE_PHONE,
        "blood_type": {"abo": "AB", "rh": "negative"},
        "allergies": [{"substance": "Zorblaxamine", "reaction": "purple Vexillum hives", "severity": "severe"}],
        "chronic_conditions": ["Hashimoto-Quokka thyroiditis"],
        "medications": [{"name": "Levothyroxquin", "dose": "75 μg once daily"}],
        "past_surgeries": [{"name": "Appendectomy-Lazuli", "year": 1999}],
        "implanted_devices": ["Medtronic-Azure-XT pacemaker"],
        "pregnancy": None,
        "emergency_contacts": [{"name": "Wenxiu Brightwater", "relation": "spouse", "phone": "13700001111"}],
        "family_doctor": {"name": "Dr Pelagia Moon", "phone": "0371-66881234"},
        "advance_directives": "No-Intubation-Sapphire",
        "notes": "Spare key under the Flowerpot-Marigold",
    }
    data.update(overrides)
    return copy.deepcopy(data)


# The case reference the grant tests use.
CASE = "case:42"


def needles() -> list[bytes]:
    """Every DISTINCTIVE word as it could appear stored: raw, hex, JSON-escaped."""
    needles = []
    for word in DISTINCTIVE:
        raw = word.encode()
        needles += [raw, raw.hex().encode(), raw.hex().upper().encode()]
        escaped = json.dumps(word)[1:-1].encode()
        if escaped != raw:
            needles.append(escaped)
    return needles


def dump_database(tmp_path) -> bytes:
    """Everything the test database holds, as bytes (SQLite dump and file, or pg_dump)."""
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        parts = ["\n".join(connection.connection.iterdump()).encode()]
        if connection.is_in_memory_db():
            copy_path = tmp_path / "dump.sqlite3"
            with connection.cursor() as cursor:
                cursor.execute("VACUUM INTO %s", [str(copy_path)])
            parts.append(copy_path.read_bytes())
        else:
            for suffix in ("", "-wal"):
                if os.path.exists(name + suffix):
                    with open(name + suffix, "rb") as handle:
                        parts.append(handle.read())
        return b"\n".join(parts)
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    command = ["pg_dump", "--no-owner", "-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432),
               "-U", db.get("USER") or "postgres", "-d", db["NAME"]]
    result = subprocess.run(command, capture_output=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout
