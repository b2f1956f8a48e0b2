"""The periodic re-check of live sockets' principals: the same verdicts as one socket's own check,
in a fixed number of queries for any number of sockets, and one thread hop for the sockets of a
worker whose ticks fall in the same window (dispatch.principals)."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiToken, Role, User
from accounts.services import token_issue, token_revoke
from dispatch import principals
from dispatch.principals import Principal, RecheckBatches, recheck_principal, recheck_principals
from tests.support.cast import make_user


def token_principal(user: User) -> Principal:
    return Principal(user_id=user.pk, role=user.role, token_id=token_issue(user=user).token.pk)


def session_principal(user: User) -> Principal:
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return Principal(user_id=user.pk, role=user.role, session_key=store.session_key)


@pytest.mark.django_db
def test_it_judges_each_principal_as_its_own_check_would_in_three_queries_for_all(dispatcher, crew, citizen):
    holding = [token_principal(make_user(f"console{n}", Role.DISPATCHER)) for n in range(12)]
    by_session = session_principal(dispatcher)
    revoked = token_principal(crew)
    token_revoke(token_id=revoked.token_id, reason="revoked")
    expired = token_principal(citizen)
    ApiToken.objects.filter(pk=expired.token_id).update(expires_at=timezone.now())
    deactivated = token_principal(make_user("gone-home", Role.DISPATCHER))
    User.objects.filter(pk=deactivated.user_id).update(is_active=False)
    moved = token_principal(make_user("now-a-crew", Role.DISPATCHER))
    User.objects.filter(pk=moved.user_id).update(role=Role.CREW)
    deleted = Principal(user_id=10**9, role=Role.DISPATCHER, token_id=10**9)
    signed_out = session_principal(make_user("signed-out", Role.DISPATCHER))
    SessionStore(session_key=signed_out.session_key).delete()
    everyone = [*holding, by_session, revoked, expired, deactivated, moved, deleted, signed_out]

    with CaptureQueriesContext(connection) as queries:
        verdicts = recheck_principals(everyone)

    assert len(queries) == 3  # the accounts, the tokens, the sessions
    assert {principal: reason for principal, (_, reason) in verdicts.items() if reason} == {
        revoked: "token_revoked",
        expired: "token_revoked",
        deactivated: "deactivated",
        moved: "role_changed",
        deleted: "deleted",
        signed_out: "session_expired",
    }
    assert all(verdicts[principal][0].pk == principal.user_id for principal in [*holding, by_session])
    # One socket's own check (at authorization, before a summary) is the same judgement.
    for principal in everyone:
        user, reason = recheck_principal(principal)
        assert (getattr(user, "pk", None), reason) == (getattr(verdicts[principal][0], "pk", None), verdicts[principal][1])


@pytest.mark.django_db
def test_it_refuses_a_session_signed_with_another_password(dispatcher):
    principal = session_principal(dispatcher)
    dispatcher.set_password("a-new-password!")
    dispatcher.save()
    assert recheck_principal(principal) == (None, "session_expired")


@pytest.mark.django_db(transaction=True)
async def test_it_answers_every_socket_whose_tick_falls_in_one_window_with_one_thread_hop(monkeypatch):
    users = await database_sync_to_async(lambda: [make_user(f"wall{n}", Role.DISPATCHER) for n in range(40)])()
    holding = await database_sync_to_async(lambda: [token_principal(user) for user in users])()
    hops = []
    judge_all = principals._judge_all
    monkeypatch.setattr(principals, "_judge_all", lambda batch: hops.append(len(batch)) or judge_all(batch))
    batches = RecheckBatches()

    def judge(user, reason):
        return reason or f"still {user.username}"

    # Every socket asks its own question; a wall of screens on one account asks the same twice.
    answers = await asyncio.gather(
        *(batches.recheck(principal, ("dispatch", ()), judge, window=0.05) for principal in [*holding, holding[0]])
    )

    assert hops == [41]
    assert answers == [f"still {user.username}" for user in users] + ["still wall0"]


@pytest.mark.django_db(transaction=True)
async def test_it_tells_only_the_socket_whose_own_judgement_failed(dispatcher, crew):
    principal, other = await database_sync_to_async(lambda: (token_principal(dispatcher), token_principal(crew)))()
    batches = RecheckBatches()

    def broken(user, reason):
        raise LookupError("this stream's own check failed")

    failing = asyncio.ensure_future(batches.recheck(principal, "mine", broken, window=0.05))
    fine = asyncio.ensure_future(batches.recheck(other, "theirs", lambda user, reason: reason, window=0.05))
    with pytest.raises(LookupError):
        await failing
    assert await fine is None


@pytest.mark.django_db(transaction=True)
async def test_it_answers_the_rest_of_a_batch_when_one_socket_closed_while_it_waited(dispatcher, crew):
    principal, other = await database_sync_to_async(lambda: (token_principal(dispatcher), token_principal(crew)))()
    batches = RecheckBatches()
    closing = asyncio.ensure_future(batches.recheck(principal, "mine", lambda user, reason: reason, window=0.05))
    staying = asyncio.ensure_future(batches.recheck(other, "theirs", lambda user, reason: user.username, window=0.05))
    await asyncio.sleep(0)
    closing.cancel()
    assert await staying == crew.username
    assert closing.cancelled()
