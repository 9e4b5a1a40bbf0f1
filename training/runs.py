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
from django.utils import timezone

from curation.models import Snapshot
from curation.transfer import export_snapshot

from .models import ModelVersion, TrainingRun


# The train job reports preparation as 0..PROGRESS_START and training as PROGRESS_START..+PROGRESS_SPAN of
# its Job's progress (the rest is registering the model version).
PROGRESS_START, PROGRESS_SPAN = 0.02, 0.96


def run_for_job(job) -> TrainingRun:
    """The TrainingRun of a train job, created from the job's (validated) arguments when it has none yet:
    the API makes it in the same transaction as the job, so the run is listed before a worker takes it."""
    from ml.train import train_config

    arguments = job.arguments
    run, _ = TrainingRun.objects.get_or_create(job=job, defaults={
        "snapshot": Snapshot.objects.get(name=arguments["snapshot"]), "preset": arguments["preset"],
        "overrides": arguments["overrides"], "config": train_config(arguments["preset"], **arguments["overrides"]).to_dict(),
        "created_by": job.created_by})
    return run


def live_stats(run: TrainingRun, now=None) -> dict:
    """How far the run is and how fast it goes, from its job and its epochs: ``epochs_done``, ``epochs``
    (planned), ``fraction`` of the training steps done, ``elapsed_seconds``, ``eta_seconds`` (while
    running, once a step is done) and ``images_per_second`` (training images through the model per
    second of the job's time; None until it is known)."""
    job, config = run.job, run.config or {}
    epochs = config.get("epochs")
    batch_size = config.get("batch_size") or 0
    steps_per_epoch = config.get("steps_per_epoch") or (run.history[0].get("steps") if run.history else None)
    stats = {"epochs_done": len(run.history), "epochs": epochs, "fraction": None, "elapsed_seconds": None,
             "eta_seconds": None, "images_per_second": None}
    if job is None:
        return stats
    if job.status == job.Status.SUCCEEDED:
        fraction = 1.0
    else:
        fraction = min(1.0, max(0.0, (job.progress - PROGRESS_START) / PROGRESS_SPAN))
    stats["fraction"] = round(fraction, 4)
    if job.started_at is None:
        return stats
    end = job.finished_at or now or timezone.now()
    elapsed = max(0.0, (end - job.started_at).total_seconds())
    stats["elapsed_seconds"] = round(elapsed, 1)
    if job.status == job.Status.RUNNING and 0 < fraction < 1:
        stats["eta_seconds"] = round(elapsed * (1 - fraction) / fraction, 1)
    # a finished run counts its completed epochs (an early stop or a cancel ends before the plan)
    epochs_trained = fraction * epochs if job.is_active and epochs else len(run.history)
    if steps_per_epoch and batch_size and elapsed > 0 and epochs_trained > 0:
        stats["images_per_second"] = round(epochs_trained * steps_per_epoch * batch_size / elapsed, 2)
    return stats


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
        version = ModelVersion(name=name, run=run, config=result["config"], metrics=result.get("kept_metrics") or result.get("best_metrics") or {},
                               snapshot_content_hash=run.snapshot.content_hash)
        version.weights.save("model.pt", File(fh), save=False)
        version.save()
    return version
