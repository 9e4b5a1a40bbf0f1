"""The try-on page (the work happens in the API: ``tryon/api.py``)."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from labeling.permissions import ADMIN, REVIEWER, STAFF_ROLES, role_of
from training.models import ModelVersion

from . import rendering


@login_required
def tryon_page(request):
    role = role_of(request.user)
    if role not in STAFF_ROLES:
        raise PermissionDenied("annotators, reviewers and admins only")
    config = rendering.page_config(rendering.active_model())
    return render(request, "tryon/tryon.html", {
        "config": config,
        # without an active model the page says how to get one, with links to the pages this user may open
        "is_admin": role == ADMIN,
        "sees_training": role in (ADMIN, REVIEWER),
        "model_versions": ModelVersion.objects.count() if config["active_model"] is None else None,
    })
