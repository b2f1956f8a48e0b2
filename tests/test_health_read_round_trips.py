"""A first (logged) staff read costs one statement beyond the grant query on PostgreSQL: the grant
re-check, the "logged once" mark and the chain append travel together (DESIGN.md: an authorised
read at most 1.2x a bare one-row write transaction), and stay exactly-once when two consoles of
one reader read at the same moment."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from health_records import audit, services
from health_records.models import AccessGrant, AccessLogEntry, AccessLogHead
from tests.support.archives import CASE, sample_archive

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's one-statement path")


@pytest.fixture
def patient(citizen):
    services.archive_put(owner=citizen, data=sample_archive(consent_share_with_120=True))
    return citizen


def _read(patient, reader, purpose="care"):
    return services.archive_read_for_grant(patient=patient, reader=reader, case_ref=CASE, purpose=purpose)


@postgresql_only
def test_it_logs_a_first_read_with_one_statement_after_the_grant_query(patient, crew):
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    _read(patient, crew, purpose="triage")  # the chain head exists from here on, as in production
    with CaptureQueriesContext(connection) as queries:
        _read(patient, crew, purpose="handover")
    statements = [q["sql"] for q in queries.captured_queries]
    # No savepoint or transaction of its own: the grant query, then the append that marks the grant.
    assert len(statements) == 2, statements
    assert "logged_read" in statements[1] and "INSERT INTO health_records_accesslogentry" in statements[1]
    assert AccessLogEntry.objects.count() == 2


@postgresql_only
def test_it_plans_the_statements_of_a_read_once_per_connection(patient, crew):
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    for purpose in ("triage", "handover", "triage"):
        _read(patient, crew, purpose=purpose)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        executions = {statement.strip(): count for statement, count in cursor.fetchall()}
    append = next(count for statement, count in executions.items() if "INSERT INTO health_records_accesslogentry" in statement)
    grants = next(count for statement, count in executions.items() if statement.startswith("SELECT g.id, g.role"))
    assert append >= 3 and grants >= 3


def test_it_delivers_a_replayed_read_with_the_grant_query_alone(patient, crew):
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    _read(patient, crew)
    with CaptureQueriesContext(connection) as queries:
        assert _read(patient, crew)["allergies"]
    assert len(queries.captured_queries) == 1
    assert AccessLogEntry.objects.count() == 1


def test_it_logs_the_first_read_of_a_database_without_a_chain_head(patient, crew, settings, tmp_path):
    settings.ACCESS_LOG_CHECKPOINT_DIR = str(tmp_path)  # verify this test's checkpoints only (none)
    grant = services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    AccessLogHead.objects.all().delete()  # a fresh or flushed database
    assert _read(patient, crew)
    _read(patient, crew)
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


# --- two consoles of one reader at the same moment ----------------------------------------------------


def _read_in_thread(patient, reader):
    """Start a read on its own connection; returns (thread, its backend pid, outcome list)."""
    started, outcome, pid = threading.Event(), [], []

    def run():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid.append(cursor.fetchone()[0])
            started.set()
            outcome.append(_read(patient, reader))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            started.set()
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(10)
    return thread, pid[0], outcome


def _wait_until_blocked(pid: int, thread: threading.Thread) -> None:
    """Readiness wait: until the other connection is waiting on a lock this one holds."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [pid])
            if cursor.fetchone()[0]:
                return
        assert thread.is_alive(), "the second read did not wait for the first"
        time.sleep(0.005)
    pytest.fail("the second read never waited on the grant's lock")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_it_logs_once_when_a_second_console_reads_while_the_first_commits(patient, crew):
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    with transaction.atomic():
        _read(patient, crew)  # logged and marked, not yet committed: the grant's row stays locked
        thread, pid, outcome = _read_in_thread(patient, crew)
        _wait_until_blocked(pid, thread)
    thread.join(10)
    assert outcome and not isinstance(outcome[0], BaseException), outcome
    assert outcome[0]["allergies"][0]["substance"] == "Zorblaxamine"  # already logged: delivered
    assert AccessLogEntry.objects.count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_read_waiting_on_a_grant_that_is_being_closed(patient, crew):
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    with transaction.atomic():
        services.grants_close(case_ref=CASE)
        thread, pid, outcome = _read_in_thread(patient, crew)
        _wait_until_blocked(pid, thread)
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], services.AccessDenied), outcome
    assert outcome[0].code == "grant_closed"
    assert not AccessLogEntry.objects.exists()
    assert AccessLogHead.objects.filter(last_seq__gt=0).count() == 0
