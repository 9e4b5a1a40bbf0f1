"""The try-on page (the work happens in the API: ``tryon/api.py``)."""
from django.shortcuts import render

from accounts.decorators import role_required
from accounts.roles import ADMIN, REVIEWER, STAFF_ROLES, role_of
from training.models import ModelVersion

from . import rendering


@role_required(*STAFF_ROLES)
def tryon_page(request):
    role = role_of(request.user)
    config = rendering.page_config(ModelVersion.objects.active())
    return render(request, "tryon/tryon.html", {
        "config": config,
        # without an active model the page says how to get one, with links to the pages this user may open
        "is_admin": role == ADMIN,
        "sees_training": role in (ADMIN, REVIEWER),
        "model_versions": ModelVersion.objects.count() if config["active_model"] is None else None,
    })
