"""The hot-path input serializers read plain bodies by a plan (dispatch.inputs.PlainBodiesFast)
and leave everything else to DRF. Whatever the body, the answer must be DRF's: the same verdict,
the same validated values of the same types, the same errors, the same converted position."""

from __future__ import annotations

import math
import random
from unittest import mock

import pytest
from rest_framework import fields as drf_fields
from rest_framework import serializers

from dispatch.inputs import FixInputSerializer
from mobile_api.serializers import SosSerializer


class DrfSos(SosSerializer):
    def to_internal_value(self, data):
        return serializers.Serializer.to_internal_value(self, data)


class DrfFix(FixInputSerializer):
    def to_internal_value(self, data):
        return serializers.Serializer.to_internal_value(self, data)


NUMBERS = [0, 1, -1, 34.7466, 113.6253, 90, 90.0, -90, 180, -180.0, 180.0001, 91, -500, 10_000, 10_000.5, 100_000,
           100_001, 1e308, 10**400, -(10**400), 2**53 + 1, True, False, "34.7", "", "east", None, [], {}, float("nan"),
           float("inf")]
TEXTS = ["", " ", "  3F  ", "家里 三楼", "a" * 16, "a" * 17, " " + "b" * 16 + " ", "x\x00y", "\ud800", "ok\n", 5, 1.5,
         True, None, [], "n" * 1000, "n" * 1001]
CHOICES = {
    "crs": ["wgs84", "gcj02", "bd09", "WGS84", "", " wgs84", None, 1, True],
    "source": ["gps", "network", "wifi", "", "GPS", None, 0],
    "complaint": ["unknown", "chest_pain", "trauma", "", "nonsense", None, 3],
}
BOOLS = [True, False, 1, 0, "true", "false", "yes", None, "", 2, [], 0.0]
LIKELY = {"lat": 34.7466, "lon": 113.6253, "accuracy_m": 12.5, "complaint": "chest_pain", "note": "胸口痛", "for_self": True}
# A second valid value for each field, so that valid bodies vary too.
ALSO_VALID = {
    "lat": -33, "lon": 151, "accuracy_m": None, "altitude_m": 88, "floor": " 3F ", "crs": "gcj02", "source": "wifi",
    "fix_time": None, "for_self": False, "silent": True, "complaint": "trauma", "note": "", "triage": {"conscious": True},
}


def random_body(rng: random.Random, *, sos: bool) -> dict:
    names = {
        "lat": NUMBERS, "lon": NUMBERS, "accuracy_m": NUMBERS, "altitude_m": NUMBERS, "floor": TEXTS,
        "crs": CHOICES["crs"], "source": CHOICES["source"],
        "fix_time": [None, "2026-12-01T08:00:00Z", "yesterday", "2099-01-01T00:00:00Z", 5],
    }
    if sos:
        names |= {
            "for_self": BOOLS, "silent": BOOLS, "complaint": CHOICES["complaint"], "note": TEXTS,
            "triage": [None, {}, {"conscious": False}, {"conscious": "maybe"}, [], "yes"],
        }
    # Half the bodies are mostly valid (one field in ten is anything), half are anything.
    wild = 0.1 if rng.random() < 0.5 else 0.7
    body = {}
    for name, values in names.items():
        roll = rng.random()
        if roll < 0.08:
            continue  # absent
        if roll < 1 - wild:
            body[name] = LIKELY[name] if name in LIKELY and rng.random() < 0.5 else ALSO_VALID[name]
        else:
            body[name] = rng.choice(values)
    if rng.random() < 0.1:
        body["unexpected"] = "ignored by both"
    return body


def verdict(serializer_class, body):
    serializer = serializer_class(data=body)
    valid = serializer.is_valid()
    if not valid:
        return False, serializer.errors, None
    data = dict(serializer.validated_data)
    typed = {name: (type(value), value) for name, value in data.items()}
    return True, typed, serializer._wgs84


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.parametrize(("fast", "drf", "sos"), [(SosSerializer, DrfSos, True), (FixInputSerializer, DrfFix, False)])
def test_it_answers_every_body_exactly_as_drf_does(fast, drf, sos):
    rng = random.Random(720)
    valid_seen = 0
    for _ in range(4000):
        body = random_body(rng, sos=sos)
        ours, theirs = verdict(fast, body), verdict(drf, body)
        assert ours[0] == theirs[0], body
        assert same(ours[1], theirs[1]), body
        assert ours[2] == theirs[2], body
        valid_seen += ours[0]
    # The bodies must exercise both answers, not only refusals.
    assert 150 < valid_seen < 3850


def test_it_reads_a_plain_tap_without_drfs_field_machinery():
    calls = mock.Mock(wraps=drf_fields.Field.run_validation)
    with mock.patch.object(drf_fields.Field, "run_validation", autospec=True, side_effect=calls):
        serializer = SosSerializer(data={**LIKELY, "crs": "gcj02", "floor": " 3F ", "silent": False, "altitude_m": None})
        assert serializer.is_valid(), serializer.errors
    assert calls.call_count == 0
    assert serializer.validated_data["floor"] == "3F"
    assert serializer.to_fix().crs == "gcj02"


def test_it_leaves_a_body_it_cannot_answer_to_drf():
    with mock.patch.object(drf_fields.Field, "run_validation", autospec=True, side_effect=drf_fields.Field.run_validation) as calls:
        serializer = SosSerializer(data={**LIKELY, "triage": {"conscious": False}})
        assert serializer.is_valid(), serializer.errors
    assert calls.call_count > 0
    assert serializer.validated_data["triage"] == {"conscious": False}


def test_it_gives_drfs_own_words_for_a_refused_field():
    serializer = SosSerializer(data={"lat": 95, "lon": 113.6, "note": "x\x00y"})
    assert not serializer.is_valid()
    assert serializer.errors["lat"] == ["Ensure this value is less than or equal to 90."]
    assert serializer.errors["note"] == ["Null characters are not allowed."]
