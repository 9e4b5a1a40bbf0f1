"""The try-on page (the work happens in the API: ``tryon/api.py``)."""
import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from labeling.permissions import STAFF_ROLES, role_of

from . import rendering


@login_required
def tryon_page(request):
    if role_of(request.user) not in STAFF_ROLES:
        raise PermissionDenied("annotators, reviewers and admins only")
    config = rendering.page_config(rendering.active_model())
    return render(request, "tryon/tryon.html", {"config": config, "config_json": json.dumps(config)})
