"""A staff read costs as few statements as the database allows, on whichever database the suite
runs: a read already logged is the grant query alone; the chain head is made by the first read of a
fresh database; a refused append marks nothing. (PostgreSQL's own one-statement append, its plans
and its lock waits: tests/test_health_reads_on_postgresql.py, which runs on PostgreSQL whenever
one is reachable.)"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from health_records import audit, services
from health_records.models import AccessGrant, AccessLogEntry, AccessLogHead
from tests.support.archives import CASE
from tests.support.reads import consenting, read_on_case


@pytest.fixture
def patient(citizen):
    return consenting(citizen)


def test_it_delivers_a_replayed_read_with_the_grant_query_alone(patient, crew):
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    read_on_case(patient, crew)
    with CaptureQueriesContext(connection) as queries:
        assert read_on_case(patient, crew)["allergies"]
    assert len(queries.captured_queries) == 1
    assert AccessLogEntry.objects.count() == 1


def test_it_logs_the_first_read_of_a_database_without_a_chain_head(patient, crew, settings, tmp_path):
    settings.ACCESS_LOG_CHECKPOINT_DIR = str(tmp_path)  # verify this test's checkpoints only (none)
    grant = services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    AccessLogHead.objects.all().delete()  # a fresh or flushed database
    assert read_on_case(patient, crew)
    read_on_case(patient, crew)
    assert list(AccessLogEntry.objects.values_list("seq", flat=True)) == [1]
    assert AccessGrant.objects.get(pk=grant.pk).logged_read
    assert audit.verify_chain().ok


def test_it_marks_nothing_when_the_append_is_refused(patient, crew):
    grant = services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    services.grants_close(case_ref=CASE)
    appended = audit.append_entry(
        reader=crew, role="crew", case_ref=CASE, purpose="care", archive_id=patient.health_archive.pk,
        patient_id=patient.pk, override=False, grant_id=grant.pk, read_key="k" * 64,
    )
    assert appended is None
    assert AccessGrant.objects.get(pk=grant.pk).logged_read == ""
    assert not AccessLogEntry.objects.exists()
