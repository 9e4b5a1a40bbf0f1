"""DRF throttles for POST /api/auth/token/: the login lockout (accounts/lockout.py) of the client's address and
of the username in the body. Over the limit DRF answers 429 with Retry-After."""
from rest_framework.throttling import BaseThrottle

from . import lockout


class LoginLockoutThrottle(BaseThrottle):
    def lockout_key(self, request) -> dict:
        raise NotImplementedError

    def allow_request(self, request, view):
        self.seconds = lockout.seconds_locked(**self.lockout_key(request))
        return self.seconds == 0

    def wait(self):
        return self.seconds


class AddressLoginThrottle(LoginLockoutThrottle):
    def lockout_key(self, request) -> dict:
        return {"address": lockout.client_address(request)}


class UsernameLoginThrottle(LoginLockoutThrottle):
    def lockout_key(self, request) -> dict:
        data = request.data  # malformed JSON: a ParseError, answered 400, before any password is checked
        username = data.get("username") if hasattr(data, "get") else None
        return {"username": username if isinstance(username, str) else None}
