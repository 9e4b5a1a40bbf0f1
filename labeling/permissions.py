"""Roles and the DRF permissions that enforce them.

- admin: a superuser, a staff user or a member of the "admin" group: everything.
- reviewer: reads every image and label, accepts or rejects submitted annotations.
- annotator: sees and edits only images assigned to them or still unassigned (the open queue).
- participant: no account; their upload token lets them upload to their own participant only.
"""
from rest_framework.permissions import BasePermission

ADMIN, REVIEWER, ANNOTATOR, PARTICIPANT = "admin", "reviewer", "annotator", "participant"
STAFF_ROLES = (ADMIN, REVIEWER, ANNOTATOR)
ROLE_GROUPS = (ADMIN, REVIEWER, ANNOTATOR)


def role_of(user) -> str | None:
    """The strongest role of a request's user (cached on the user object for the request)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if getattr(user, "participant", None) is not None and not getattr(user, "pk", None):
        return PARTICIPANT
    cached = getattr(user, "_nailset_role", False)
    if cached is not False:
        return cached
    if not user.is_active:
        role = None
    elif user.is_superuser or user.is_staff:
        role = ADMIN
    else:
        groups = set(user.groups.values_list("name", flat=True))
        role = next((name for name in ROLE_GROUPS if name in groups), None)
    user._nailset_role = role
    return role


class HasRole(BasePermission):
    roles: tuple[str, ...] = ()

    def has_permission(self, request, view):
        return role_of(request.user) in self.roles


class IsStaffRole(HasRole):
    roles = STAFF_ROLES
    message = "you need an annotator, reviewer or admin account"


class IsReviewerOrAdmin(HasRole):
    roles = (ADMIN, REVIEWER)
    message = "only reviewers and admins may do this"


class IsAdminRole(HasRole):
    roles = (ADMIN,)
    message = "only admins may do this"


class IsParticipantOrAdmin(HasRole):
    roles = (PARTICIPANT, ADMIN)
    message = "upload with your participant upload token, or as an admin"
