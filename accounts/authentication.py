"""Scripts authenticate with ``Authorization: Token <key>``: the key's sha256 names an ApiToken that has neither
expired nor been revoked (401 saying which, otherwise)."""
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from .models import ApiToken, key_digest


class ApiTokenAuthentication(TokenAuthentication):
    keyword = "Token"
    model = ApiToken

    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user").filter(key_digest=key_digest(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("invalid API token")
        now = timezone.now()
        problem = token.problem(now)
        if problem:
            raise exceptions.AuthenticationFailed(problem)
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("this API token's user is inactive or deleted")
        token.mark_used(now)
        return token.user, token
