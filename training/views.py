"""Training pages: runs with their loss and mIoU curves, a form to start one, and the model versions' index."""
from django.shortcuts import get_object_or_404, render

from accounts.decorators import role_required
from accounts.roles import ADMIN, REVIEWER, role_of
from curation.models import Snapshot
from ml.train_presets import DEFAULT_TRAIN_PRESET, describe_presets

from .models import ModelVersion, TrainingRun
from .serializers import TrainingRunSerializer


@role_required(ADMIN, REVIEWER)
def training_page(request):
    """Runs are drawn by training/static/training/training.js from the API's records (given here for the
    first paint, then polled while one is queued or running). The preset select lists ml.train_presets with
    each one's device, budget and measured figure (the selected one's shown)."""
    runs = TrainingRun.objects.select_related("snapshot", "job__created_by", "created_by", "model_version")[:50]
    return render(request, "training/training.html", {
        "runs_data": TrainingRunSerializer(runs, many=True).data,
        "models": ModelVersion.objects.all()[:50],
        "snapshots": Snapshot.objects.filter(status=Snapshot.Status.READY),
        "is_admin": role_of(request.user) == ADMIN,
        "presets": describe_presets(),
        "default_preset": DEFAULT_TRAIN_PRESET,
    })


def scalar_metrics(metrics: dict) -> list[tuple[str, float]]:
    """The numbers among a model version's stored metrics, by name (val mIoU, nail IoU... as the run kept them)."""
    return sorted((key, value) for key, value in (metrics or {}).items()
                  if isinstance(value, (int, float)) and not isinstance(value, bool))


def _weights_size(version: ModelVersion) -> int | None:
    try:
        return version.weights.size if version.weights else None
    except (OSError, ValueError):
        return None  # the file is gone: the page still lists the version


@role_required(ADMIN, REVIEWER)
def models_page(request):
    """Every model version: its metrics, whether it is the active one, its exports, and (admins) promotion."""
    versions = (ModelVersion.objects.select_related("run__snapshot").prefetch_related("artifacts")
                .order_by("-is_active", "-created_at"))
    return render(request, "training/models.html", {
        "versions": [{"version": v, "metrics": scalar_metrics(v.metrics), "artifacts": list(v.artifacts.all()),
                      "weights_size": _weights_size(v)} for v in versions],
        "is_admin": role_of(request.user) == ADMIN,
    })


@role_required(ADMIN, REVIEWER)
def run_page(request, run_id: int):
    run = get_object_or_404(TrainingRun.objects.select_related("snapshot", "job__created_by", "created_by", "model_version"), pk=run_id)
    data = TrainingRunSerializer(run).data
    return render(request, "training/run.html", {
        "run": run, "run_data": data, "live": data["live"],
        "is_admin": role_of(request.user) == ADMIN,
    })
