"""The tap's input serializer builds its fields once per class (dispatch.inputs.FieldsBuiltOnce)
and binds shallow copies per request: each request must still see fields of its own, and one
request's errors or values must never show in the next one's."""

from __future__ import annotations

import threading

from dispatch.inputs import FixInputSerializer
from mobile_api.serializers import SosSerializer

GOOD = {"lat": 34.7466, "lon": 113.6253, "complaint": "trauma", "triage": {"conscious": False}}


def test_it_binds_each_request_its_own_copies_of_the_fields():
    first, second = SosSerializer(data=GOOD), SosSerializer(data=GOOD)
    for name in ("lat", "crs", "triage", "complaint"):
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first
        assert second.fields[name].parent is second
    assert first.fields["triage"].fields["conscious"] is not second.fields["triage"].fields["conscious"]


def test_it_keeps_the_class_fields_of_a_parent_and_a_child_serializer_apart():
    assert set(FixInputSerializer().fields) < set(SosSerializer().fields)
    assert "complaint" not in FixInputSerializer().fields


def test_it_does_not_carry_one_requests_errors_or_values_into_the_next():
    bad = SosSerializer(data={"lat": 95, "lon": "east", "complaint": "nonsense", "triage": {"conscious": "maybe"}})
    assert not bad.is_valid()
    assert set(bad.errors) == {"lat", "lon", "complaint", "triage"}

    good = SosSerializer(data=GOOD)
    assert good.is_valid(), good.errors
    assert good.validated_data["complaint"] == "trauma"
    assert good.validated_data["triage"] == {"conscious": False}
    assert good.to_fix().lat == GOOD["lat"]

    again = SosSerializer(data={"lat": 95, "lon": 113.6})
    assert not again.is_valid()
    assert set(again.errors) == {"lat"}


def test_it_validates_concurrent_requests_independently():
    results: dict[int, tuple[bool, object]] = {}

    def validate(n: int) -> None:
        body = {"lat": 30 + n / 100, "lon": 113.6} if n % 2 else {"lat": 200 + n, "lon": 113.6}
        serializer = SosSerializer(data=body)
        valid = serializer.is_valid()
        results[n] = (valid, serializer.validated_data["lat"] if valid else sorted(serializer.errors))

    threads = [threading.Thread(target=validate, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, (valid, outcome) in results.items():
        if n % 2:
            assert valid and outcome == 30 + n / 100
        else:
            assert not valid and outcome == ["lat"]
