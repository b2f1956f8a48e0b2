"""PostgreSQL for the tests of PostgreSQL-only code paths, whatever database the suite runs on.

Some statements exist only for PostgreSQL (the access log's one-statement append, COPY for
imports). Their tests must run wherever a PostgreSQL is reachable, not only in CI: a module that
declares

    pytest_plugins = ["tests.support.pg"]
    pytestmark = pytest.mark.usefixtures("on_postgresql")

runs every test of it with the default database connection on PostgreSQL:

- when the suite itself runs on PostgreSQL (DATABASE_URL), on that database, as any other test;
- otherwise on a throwaway database (``onekey120_pgtest_<pid>_<random>``), created and migrated
  once per test process on the server of ``TEST_POSTGRES_URL`` (default
  ``postgres://postgres@127.0.0.1:5432/postgres``) and dropped at the end. pytest-django's ``db``
  and ``transactional_db`` then isolate each test there exactly as they do on the suite's database
  (a rolled-back transaction, or a flush), and threads a test starts connect there too.

Unreachable, the module skips; with CI set it fails instead (CI has PostgreSQL, and nothing may
skip there for a missing service).
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from urllib.parse import urlparse

import dj_database_url
import psycopg
import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections

from tests.support.cast import service_missing

ADMIN_URL_VAR = "TEST_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get(ADMIN_URL_VAR) or DEFAULT_ADMIN_URL


@contextmanager
def default_database(settings_dict: dict):
    """Point the default connection alias at ``settings_dict`` (every thread: new connections are
    made from it), and back afterwards. The suite's own connection is kept, not closed, and put
    back as it was."""
    saved_settings = connections.settings[DEFAULT_DB_ALIAS]
    saved = getattr(connections._connections, DEFAULT_DB_ALIAS, None)
    connections.settings[DEFAULT_DB_ALIAS] = settings_dict
    if saved is not None:
        del connections[DEFAULT_DB_ALIAS]
    try:
        yield
    finally:
        current = getattr(connections._connections, DEFAULT_DB_ALIAS, None)
        if current is not None:
            current.close()
        connections.settings[DEFAULT_DB_ALIAS] = saved_settings
        if saved is not None:
            connections[DEFAULT_DB_ALIAS] = saved
        elif current is not None:
            del connections[DEFAULT_DB_ALIAS]


def _unreachable(message: str):
    service_missing(f"PostgreSQL not reachable ({message}); set {ADMIN_URL_VAR} to run these tests")


@pytest.fixture(scope="session")
def postgresql_database(django_db_blocker):
    """The settings of a migrated PostgreSQL database for this test process (None when the suite
    already runs on PostgreSQL)."""
    if connection.vendor == "postgresql":
        yield None
        return
    url = admin_url()
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=2)
    except psycopg.Error as exc:
        _unreachable(str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__)
    name = f"onekey120_pgtest_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:
        try:
            admin.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as exc:
            _unreachable(f"cannot create a database there: {str(exc).strip()}")
    settings_dict = connections.configure_settings(
        {DEFAULT_DB_ALIAS: dj_database_url.parse(urlparse(url)._replace(path=f"/{name}").geturl())}
    )[DEFAULT_DB_ALIAS]
    settings_dict["TEST"]["NAME"] = name  # never a test_ copy: it is throwaway already
    try:
        with default_database(settings_dict), django_db_blocker.unblock():
            call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
        yield settings_dict
    finally:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def on_postgresql(postgresql_database):
    """Every test of the module on PostgreSQL (see the module docstring)."""
    if postgresql_database is None:
        yield
        return
    with default_database(postgresql_database):
        yield


# On PostgreSQL already, the suite's own run is the PostgreSQL one.
EACH_DATABASE = ["suite database"] + (["postgresql"] if connection.vendor != "postgresql" else [])


@pytest.fixture(scope="module", params=EACH_DATABASE)
def on_each_database(request):
    """Every test of the module twice: on the suite's database, then on PostgreSQL as
    ``on_postgresql`` does (once only when the suite runs on PostgreSQL). Module-scoped, so the
    default connection is switched before any test's ``db`` begins. A module declares
    ``pytestmark = pytest.mark.usefixtures("on_each_database")``."""
    if request.param == "suite database":
        yield request.param
        return
    with default_database(request.getfixturevalue("postgresql_database")):
        yield request.param
