"""Training pages: runs with their loss and mIoU curves, and a form to start one."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from curation.models import Snapshot
from labeling.permissions import ADMIN, REVIEWER, role_of

from .models import ModelVersion, TrainingRun


def _require_reviewer(request):
    if role_of(request.user) not in (ADMIN, REVIEWER):
        raise PermissionDenied("reviewers and admins only")


@login_required
def training_page(request):
    _require_reviewer(request)
    return render(request, "training/training.html", {
        "runs": TrainingRun.objects.select_related("snapshot", "job", "model_version")[:50],
        "models": ModelVersion.objects.all()[:50],
        "snapshots": Snapshot.objects.filter(status=Snapshot.Status.READY),
        "is_admin": role_of(request.user) == ADMIN,
    })


@login_required
def run_page(request, run_id: int):
    _require_reviewer(request)
    run = get_object_or_404(TrainingRun.objects.select_related("snapshot", "job", "model_version"), pk=run_id)
    return render(request, "training/run.html", {"run": run})
