"""Training on a snapshot: the masks export it reads, the run record, the model version it yields.

The training itself is ``ml.train.train`` (plain PyTorch); this module only feeds it a snapshot's data,
records each epoch, and turns the best checkpoint into a ModelVersion.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction

from curation.models import Snapshot
from curation.transfer import export_snapshot

from .models import ModelVersion, TrainingRun


def training_data_dir_of(snapshot: Snapshot) -> Path:
    """Where the snapshot's training data is kept (see training_data_dir); erasure deletes it."""
    return Path(settings.MEDIA_ROOT) / "training-data" / f"{snapshot.name}-{snapshot.content_hash[:12]}"


def training_data_dir(snapshot: Snapshot) -> Path:
    """The snapshot's "masks" export as a folder, made once and kept (snapshots never change; an erasure
    deletes it, and the next run makes it again without the erased participant)."""
    folder = training_data_dir_of(snapshot)
    root = folder.parent
    if not (folder / "manifest.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=root, prefix=".partial-"))
        try:
            export_snapshot(snapshot, "masks", out=str(partial / "masks"))
            shutil.rmtree(folder, ignore_errors=True)
            (partial / "masks").rename(folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return folder


def run_dir(run: TrainingRun) -> Path:
    """Checkpoints of the run; named after its job's message id too, so a restarted job resumes from
    its own checkpoints and never from another run's (database ids can be reused after a restore)."""
    suffix = run.job.celery_task_id[:8] if run.job_id else "nojob"
    return Path(settings.MEDIA_ROOT) / "training" / f"run-{run.pk}-{suffix}"


def record_epoch(run: TrainingRun, entry: dict) -> None:
    run.history = [*run.history, entry]
    TrainingRun.objects.filter(pk=run.pk).update(history=run.history)


def register_model_version(run: TrainingRun, result: dict) -> ModelVersion:
    checkpoint = result.get("checkpoint") or result.get("last_checkpoint")
    if not checkpoint:
        raise RuntimeError(f"run {run.pk} produced no checkpoint")
    name = f"{run.snapshot.name}-{run.preset}-{run.pk}"
    with transaction.atomic(), open(checkpoint, "rb") as fh:
        version = ModelVersion(name=name, run=run, config=result["config"], metrics=result.get("best_metrics") or {},
                               snapshot_content_hash=run.snapshot.content_hash)
        version.weights.save("model.pt", File(fh), save=False)
        version.save()
    return version
