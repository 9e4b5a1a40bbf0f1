"""The one authentication backend: Django's ModelBackend behind the login lockout (accounts/lockout.py), so
every password check (login page, admin login, POST /api/auth/token/) is counted and refused while locked."""
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from . import lockout


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = lockout.client_address(request)
        if lockout.seconds_locked(username, address):
            return None  # not even checked: a correct password is refused too until the lockout ends
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            lockout.record_failure(username, address)
        else:
            lockout.record_success(username, address)
        return user
