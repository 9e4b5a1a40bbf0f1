"""The roles of the platform and how a user's role is found.

- admin: a superuser, a staff user or a member of the "admin" group: everything.
- reviewer: reads every image and label, accepts or rejects submitted annotations.
- annotator: sees and edits only images assigned to them or still unassigned (the open queue).
- participant: no account; their upload token lets them upload to their own participant only.

The API enforces roles with the DRF permission classes of ``accounts/permissions.py``, pages with
``accounts.decorators.role_required``.
"""
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


def describe_roles(roles) -> str:
    """"reviewers and admins", "annotators, reviewers and admins": the roles in plain words, weakest first."""
    order = (PARTICIPANT, ANNOTATOR, REVIEWER, ADMIN)
    names = [f"{role}s" for role in sorted(set(roles), key=order.index)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
