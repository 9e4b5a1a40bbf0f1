from django.contrib import admin, messages
from django.utils import timezone

from .models import ApiToken, FailedLoginCounter


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens by their prefix; the key itself is never stored. New ones: POST /api/auth/token/ or
    ``manage.py create_api_token USERNAME``."""

    list_display = ["key_prefix", "user", "name", "created_at", "expires_at", "last_used_at", "state"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["key_prefix", "user__username", "name"]
    readonly_fields = ["user", "key_prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    fields = ["user", "name", "key_prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="state")
    def state(self, obj):
        if obj.revoked_at:
            return "revoked"
        return "expired" if obj.expires_at <= timezone.now() else "active"

    @admin.action(description="Revoke the selected tokens (they stop working at once)")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"revoked {count} API tokens", messages.WARNING)


@admin.register(FailedLoginCounter)
class FailedLoginCounterAdmin(admin.ModelAdmin):
    """Who is locked out of logging in; delete a row to lift its lockout."""

    list_display = ["scope", "key", "failures", "last_failure_at", "locked_until"]
    list_filter = ["scope"]
    search_fields = ["key"]
    readonly_fields = ["scope", "key", "failures", "last_failure_at", "locked_until"]

    def has_add_permission(self, request):
        return False
