"""PostgreSQL's own path of a staff read, on PostgreSQL whenever one is reachable (tests.support.pg),
whatever database the rest of the suite runs on: a first (logged) read costs one statement beyond
the grant query (the grant re-check, the "logged once" mark and the chain append travel together;
DESIGN.md: an authorised read at most 1.2x a bare one-row write transaction), both are planned once
per connection, the HMAC PostgreSQL computes is the one Python verifies, and the read stays
exactly-once when two consoles of one reader read at the same moment."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from health_records import audit, keys, services
from health_records.models import AccessLogEntry, AccessLogHead
from tests.support.archives import CASE
from tests.support.reads import consenting, read_on_case

pytest_plugins = ["tests.support.pg"]
pytestmark = pytest.mark.usefixtures("on_postgresql")


@pytest.fixture
def patient(citizen):
    return consenting(citizen)


def test_it_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def test_it_logs_a_first_read_with_one_statement_after_the_grant_query(patient, crew):
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    read_on_case(patient, crew, purpose="triage")  # the chain head exists from here on, as in production
    with CaptureQueriesContext(connection) as queries:
        read_on_case(patient, crew, purpose="handover")
    statements = [q["sql"] for q in queries.captured_queries]
    # No savepoint or transaction of its own: the grant query, then the append that marks the grant.
    assert len(statements) == 2, statements
    assert "logged_read" in statements[1] and "INSERT INTO health_records_accesslogentry" in statements[1]
    assert AccessLogEntry.objects.count() == 2


def test_it_plans_the_statements_of_a_read_once_per_connection(patient, crew):
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    for purpose in ("triage", "handover", "triage"):
        read_on_case(patient, crew, purpose=purpose)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        executions = {statement.strip(): count for statement, count in cursor.fetchall()}
    append = next(count for statement, count in executions.items() if "INSERT INTO health_records_accesslogentry" in statement)
    grants = next(count for statement, count in executions.items() if statement.startswith("SELECT g.id, g.role"))
    assert append >= 3 and grants >= 3


def test_postgresqls_sha256_with_padded_keys_is_hmac_sha256(db):
    key = keys.access_log_hmac_key()
    inner, outer = audit._hmac_pads(key)
    for message in ("", "v2;1:1;", "调度员 " * 40, "x" * 200):
        with connection.cursor() as cursor:
            cursor.execute("SELECT encode(sha256(%s::bytea || sha256(%s::bytea || convert_to(%s, 'UTF8'))), 'hex')",
                           [outer, inner, message])
            assert cursor.fetchone()[0] == hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def test_the_chain_postgresql_appends_is_the_one_python_verifies(patient, crew, settings, tmp_path):
    settings.ACCESS_LOG_CHECKPOINT_DIR = str(tmp_path)  # this test's checkpoints only (none)
    crew.username = "调度员-ü 1;2:"
    crew.save()
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    AccessLogHead.objects.all().delete()  # the first append makes the head, as on a fresh database
    for purpose in ("triage", "handover", "triage", "transfer"):
        read_on_case(patient, crew, purpose=purpose)
    key = keys.access_log_hmac_key()
    for entry in AccessLogEntry.objects.order_by("seq"):
        fields = {name: getattr(entry, name) for name in ("seq", "at", "reader_id", "reader_username", "role",
                                                          "case_ref", "purpose", "archive_id", "patient_id", "override")}
        assert entry.hash == audit.entry_hash(prev_hash=entry.prev_hash, key=key, **fields)
    assert AccessLogEntry.objects.count() == 4
    assert audit.verify_chain().ok


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
            outcome.append(read_on_case(patient, reader))
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


@pytest.mark.django_db(transaction=True)
def test_it_logs_once_when_a_second_console_reads_while_the_first_commits(patient, crew):
    services.grant_open(case_ref=CASE, grantee=crew, role="crew", patient=patient, purpose="care")
    with transaction.atomic():
        read_on_case(patient, crew)  # logged and marked, not yet committed: the grant's row stays locked
        thread, pid, outcome = _read_in_thread(patient, crew)
        _wait_until_blocked(pid, thread)
    thread.join(10)
    assert outcome and not isinstance(outcome[0], BaseException), outcome
    assert outcome[0]["allergies"][0]["substance"] == "Zorblaxamine"  # already logged: delivered
    assert AccessLogEntry.objects.count() == 1


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
