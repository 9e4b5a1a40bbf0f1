"""Accounts: API tokens for scripts (stored as digests, expiring, revocable) and the failed-login counters
behind the login lockout (accounts/lockout.py)."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

# Tokens that expired or were revoked stay listed (in the admin) this long, then go when their user gets a new one.
ENDED_TOKENS_KEPT = timedelta(days=30)
LAST_USED_PRECISION = timedelta(minutes=1)  # at most one write a minute per token for last_used_at


def key_digest(key: str) -> str:
    """sha256 of a token key: the key is 256 random bits, so a fast hash is safe and lookups stay one query."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """``Authorization: Token <key>``. Only the key's sha256 is stored: the key is shown once, when issued."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="what the token is for (a script, a machine)")
    key_prefix = models.CharField(max_length=8, db_index=True, help_text="the key's first 8 characters, to recognise it")
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.key_prefix}… ({self.user})"

    @classmethod
    def issue(cls, user, *, name: str = "", days: float | None = None) -> tuple["ApiToken", str]:
        """A new token for ``user`` valid ``days`` (default NAILSET_API_TOKEN_DAYS): ``(token, key)``; the key
        exists nowhere else, so the caller shows it now or never. Also drops this user's tokens that ended
        more than ENDED_TOKENS_KEPT ago."""
        days = settings.NAILSET_API_TOKEN_DAYS if days is None else days
        if not days > 0:
            raise ValueError(f"a token must last a positive number of days, not {days}")
        now = timezone.now()
        cutoff = now - ENDED_TOKENS_KEPT
        cls.objects.filter(user=user).filter(models.Q(expires_at__lt=cutoff) | models.Q(revoked_at__lt=cutoff)).delete()
        key = secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_prefix=key[:8], key_digest=key_digest(key),
                                   created_at=now, expires_at=now + timedelta(days=days))
        return token, key

    def problem(self, now=None) -> str | None:
        """Why this token no longer authenticates (revoked, expired), or None."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return (f"this API token was revoked on {self.revoked_at:%Y-%m-%d %H:%M} UTC; "
                    "get a new one with POST /api/auth/token/")
        if self.expires_at <= now:
            return (f"this API token expired on {self.expires_at:%Y-%m-%d %H:%M} UTC; "
                    "get a new one with POST /api/auth/token/")
        return None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    def mark_used(self, now=None) -> None:
        now = now or timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_PRECISION:
            self.last_used_at = now
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)


class FailedLoginCounter(models.Model):
    """Recent failed password checks for one username or one client address (accounts/lockout.py).
    Deleting a row lifts its lockout."""

    class Scope(models.TextChoices):
        USERNAME = "username"
        ADDRESS = "address"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    key = models.CharField(max_length=255, help_text="the username tried, or the client's address")
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(db_index=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="one_failed_login_counter_per_key")]

    def __str__(self):
        return f"{self.scope} {self.key}: {self.failures} failures"
