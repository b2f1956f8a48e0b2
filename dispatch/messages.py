"""Silent calls: short texts between a caller who cannot speak and the centre, on the case.

One service for every way in (the caller's REST call, the caller's ``{"type":"message"}`` frame on
/ws/cases/{id}/, the dispatcher's REST call); each message is a ``case.message`` event on the
dispatch stream and on the case's own stream, nowhere else.
"""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from dispatch.errors import Conflict, DispatchError, InvalidField, NotFound
from dispatch.events import DISPATCH_STREAM, Outgoing, case_stream, emit
from dispatch.models import ACTIVE_CASE_STATUSES, Case, CaseMessage, MessageSender
from dispatch.serializers import message_payload

MAX_LENGTH = 500
# Line breaks and tabs are text; other control characters are not.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


class RateLimited(DispatchError):
    """Too many messages on this case from this side (429)."""

    code = "throttled"

    def __init__(self, detail: str, *, wait: int):
        super().__init__(detail)
        self.wait = wait


def clean_text(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidField("text", "Send the message as text.")
    text = text.strip()
    if not text:
        raise InvalidField("text", "The message is empty.")
    if len(text) > MAX_LENGTH:
        raise InvalidField("text", f"At most {MAX_LENGTH} characters.")
    if _CONTROL.search(text):
        raise InvalidField("text", "The message contains control characters.")
    return text


def _take_slot(case_id: int, sender: str) -> None:
    """A fixed window per case and side in the shared cache (Redis in production), as the API's
    throttles count: every worker sees the same count. Dispatchers share one budget per case, so
    a stuck console cannot flood a hiding caller's phone."""
    count_s, _, period = settings.CASE_MESSAGE_RATE_LIMIT.partition("/")
    limit, seconds = int(count_s), _PERIODS[period]
    window = int(time.time() // seconds)
    key = f"case_message:{case_id}:{sender}:{window}"
    cache.add(key, 0, timeout=seconds + 1)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=seconds + 1)
        used = 1
    if used > limit:
        wait = max(1, seconds - int(time.time() % seconds))
        raise RateLimited(f"Too many messages on this case; try again in {wait} s.", wait=wait)


def message_send(*, case_id: int, sender: str, author, text: str) -> CaseMessage:
    """Post a message on an active case. ``sender`` is caller or dispatcher; the view (or the
    consumer) has already checked that ``author`` may speak for that side on this case."""
    if sender not in MessageSender.values:
        raise InvalidField("sender", f"Use one of {', '.join(MessageSender.values)}.")
    text = clean_text(text)
    exists = Case.objects.filter(pk=case_id).values_list("status", flat=True).first()
    if exists is None:
        raise NotFound(f"No case with id {case_id}.")
    if exists not in ACTIVE_CASE_STATUSES:
        raise Conflict(f"The case is {exists}; messages are closed.", code="case_not_open")
    _take_slot(case_id, sender)
    now = timezone.now()
    with transaction.atomic():
        # Locked so a message cannot land after the case closed in a racing transaction.
        case = Case.objects.select_for_update().filter(pk=case_id).only("status").first()
        if case.status not in ACTIVE_CASE_STATUSES:
            raise Conflict(f"The case is {case.status}; messages are closed.", code="case_not_open")
        message = CaseMessage.objects.create(case_id=case_id, sender=sender, author=author, text=text, sent_at=now)
        data = message_payload(message)
        emit([Outgoing(DISPATCH_STREAM, "case.message", data), Outgoing(case_stream(case_id), "case.message", data)], at=now)
        return message
