"""The DRF permission classes that enforce the roles of ``accounts/roles.py`` on the API (``IsStaffRole`` is
the default of every view, settings.REST_FRAMEWORK)."""
from rest_framework.permissions import BasePermission

from .roles import ADMIN, PARTICIPANT, REVIEWER, STAFF_ROLES, role_of


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
