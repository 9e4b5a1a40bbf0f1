"""``role_required``: the role check of every page."""
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from .roles import describe_roles, role_of


def role_required(*roles: str, message: str | None = None):
    """A page for these roles only: anonymous visitors are sent to the login page (then back), a signed-in
    user with another role gets 403 (templates/403.html) saying who may open it, or ``message``."""
    if not roles:
        raise ValueError("role_required needs at least one role")
    refusal = message or f"{describe_roles(roles)} only"

    def decorator(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            if role_of(request.user) not in roles:
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)
        checked.required_roles = roles  # read by tests/test_accounts_roles.py's walk over every page
        return login_required(checked)
    return decorator
