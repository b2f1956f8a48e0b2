"""The citizen API's throttles: sign-in and registration attempts, registrations per number, SOS
taps. Here, beside the views that use them: the SOS throttle asks dispatch whether a tap was
already taken, and only the API layer may depend on dispatch."""

from __future__ import annotations

import secrets

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from accounts.services import normalize_phone
from config.client_ip import request_client_ip
from dispatch import idempotency


class SharedWindowThrottle(SimpleRateThrottle):
    """DRF's sliding-window throttle, counted in one atomic Redis round trip when the cache is
    Redis (config.cache.FailOpenRedisCache.hit_window), so every worker counts against one window
    and two requests at the same moment cannot both take the last slot. Any other cache (the
    single-process default) keeps DRF's own read-then-write."""

    window_member: str | None = None
    hit = None

    def allow_request(self, request, view):
        hit_window = getattr(self.cache, "hit_window", None)
        if hit_window is None:
            return super().allow_request(request, view)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        # Unique even for two requests in the same microsecond: each is its own entry.
        self.window_member = f"{self.now!r}:{secrets.token_hex(6)}"
        self.hit = hit_window(self.key, now=self.now, duration=self.duration, limit=self.num_requests, member=self.window_member)
        return self.hit is None or self.hit.taken  # None: Redis unreachable, fail open

    def wait(self):
        if self.hit is None:
            return super().wait()
        # As DRF's: the time until the oldest entry leaves, shared among the slots it frees.
        remaining = self.duration - (self.now - self.hit.oldest) if self.hit.oldest is not None else self.duration
        available = self.num_requests - self.hit.used + 1
        return remaining / float(available) if available > 0 else None


class AuthThrottle(SharedWindowThrottle, AnonRateThrottle):
    """Login and registration attempts per client address (AUTH_RATE_LIMIT). The address is the
    socket peer unless a trusted proxy forwarded the request (config.client_ip): DRF's get_ident
    believes any X-Forwarded-For, which let a client pick a fresh address per guess."""

    scope = "auth"

    def get_rate(self):
        return settings.AUTH_RATE_LIMIT

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request_client_ip(request)}


class RegisterPhoneThrottle(SharedWindowThrottle):
    """Registrations per phone number (REGISTER_PHONE_RATE_LIMIT), whatever the address: probing
    one number from many addresses is limited too."""

    scope = "register_phone"

    def get_rate(self):
        return settings.REGISTER_PHONE_RATE_LIMIT

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}
        phone = data.get("phone")
        normalized = normalize_phone(phone) if isinstance(phone, str) and len(phone) <= 40 else None
        if normalized is None:
            return None  # not a number anyone could register; the serializer refuses it
        return self.cache_format % {"scope": self.scope, "ident": normalized}


class SosThrottle(SharedWindowThrottle, UserRateThrottle):
    """SOS taps per citizen (SOS_RATE_LIMIT): stops a stuck button, never a second emergency."""

    scope = "sos"

    def get_rate(self):
        return settings.SOS_RATE_LIMIT

    def allow_request(self, request, view):
        # A retry of a tap already taken creates nothing, so it neither counts nor is refused:
        # a flaky network must not use up the quota a second emergency needs, nor hide the case.
        # Asking the database first would cost every tap a query for the rare retry, so a tap
        # within the limit is counted at once, as any other, and the view takes a retry's count
        # back (uncount_retry); only a tap over the limit is looked up before it is refused.
        if super().allow_request(request, view):
            if self.rate is not None and self.key is not None:
                setattr(request, _COUNTED, (self.key, self.now, self.duration, self.window_member))
            return True
        return idempotency.tap_seen(request)

    @classmethod
    def uncount_retry(cls, request) -> None:
        """The tap turned out to be a retry: remove the count allow_request added for it."""
        counted = getattr(request, _COUNTED, None)
        if counted is None:
            return
        key, at, duration, member = counted
        if member is not None:
            cls.cache.leave_window(key, member=member)
            return
        history = cls.cache.get(key, [])
        if at in history:
            history.remove(at)
            cls.cache.set(key, history, duration)


_COUNTED = "_onekey_sos_counted"
