"""Login lockout with exponential backoff, per username and per client address, shared by every process
(the counters are rows: gunicorn's workers and threads all see them).

Every password check goes through here (accounts.backends.LockoutModelBackend): the session login page, the
admin's, and POST /api/auth/token/. After NAILSET_LOGIN_FAILURES_BEFORE_LOCKOUT failures for a username (or
..._PER_ADDRESS failures from one address) further attempts are refused, a correct password included, for
NAILSET_LOGIN_LOCKOUT_SECONDS, doubling with each further failure up to NAILSET_LOGIN_LOCKOUT_MAX_SECONDS.
A success resets both counters; a counter without a failure for NAILSET_LOGIN_FAILURE_MEMORY_SECONDS starts
again from zero.
"""
from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import FailedLoginCounter

Scope = FailedLoginCounter.Scope
KEY_LENGTH = FailedLoginCounter._meta.get_field("key").max_length


def client_address(request) -> str | None:
    """The client's IP address: REMOTE_ADDR, or with NAILSET_NUM_PROXIES trusted reverse proxies in front,
    the address the outermost of them saw (X-Forwarded-For, counted from the right, as DRF does)."""
    if request is None:
        return None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    proxies = settings.NAILSET_NUM_PROXIES
    if proxies > 0 and forwarded:
        addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))]
    return request.META.get("REMOTE_ADDR") or None


def _keys(username, address) -> list[tuple[str, str]]:
    keys = []
    if isinstance(username, str) and username:
        keys.append((Scope.USERNAME, username[:KEY_LENGTH]))
    if isinstance(address, str) and address:
        keys.append((Scope.ADDRESS, address[:KEY_LENGTH]))
    return keys


def _matching(keys) -> Q:
    query = Q(pk__in=[])
    for scope, key in keys:
        query |= Q(scope=scope, key=key)
    return query


def seconds_locked(username=None, address=None) -> int:
    """Seconds until ``username`` and ``address`` may try a password again; 0 when they may now."""
    keys = _keys(username, address)
    if not keys:
        return 0
    now = timezone.now()
    ends = FailedLoginCounter.objects.filter(_matching(keys), locked_until__gt=now).values_list("locked_until", flat=True)
    return max((math.ceil((end - now).total_seconds()) for end in ends), default=0)


def lockout_seconds(failures_over: int) -> int:
    """Length of the lockout after ``failures_over`` failures beyond the allowance (0 -> the first lockout)."""
    first, longest = settings.NAILSET_LOGIN_LOCKOUT_SECONDS, settings.NAILSET_LOGIN_LOCKOUT_MAX_SECONDS
    return int(min(longest, first * 2 ** min(failures_over, 40)))


def record_failure(username=None, address=None) -> None:
    now = timezone.now()
    forget_before = now - timedelta(seconds=settings.NAILSET_LOGIN_FAILURE_MEMORY_SECONDS)
    allowance = {Scope.USERNAME: settings.NAILSET_LOGIN_FAILURES_BEFORE_LOCKOUT,
                 Scope.ADDRESS: settings.NAILSET_LOGIN_FAILURES_BEFORE_LOCKOUT_PER_ADDRESS}
    with transaction.atomic():
        # Counters nobody failed on for a long time and that lock nothing: gone, so guessed names do not pile up.
        FailedLoginCounter.objects.filter(last_failure_at__lt=forget_before).filter(
            Q(locked_until__isnull=True) | Q(locked_until__lt=now)).delete()
        for scope, key in _keys(username, address):
            counter, created = FailedLoginCounter.objects.select_for_update().get_or_create(
                scope=scope, key=key, defaults={"last_failure_at": now})
            if not created and counter.last_failure_at < forget_before:
                counter.failures = 0
            counter.failures += 1
            counter.last_failure_at = now
            if counter.failures >= allowance[scope]:
                counter.locked_until = now + timedelta(seconds=lockout_seconds(counter.failures - allowance[scope]))
            counter.save()


def record_success(username=None, address=None) -> None:
    keys = _keys(username, address)
    if keys:
        FailedLoginCounter.objects.filter(_matching(keys)).delete()


def describe_wait(seconds: int) -> str:
    """``95`` -> ``"2 minutes"``: for people, rounded up."""
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 90 * 60:
        minutes = math.ceil(seconds / 60)
        return f"{minutes} minutes"
    hours = math.ceil(seconds / 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"
