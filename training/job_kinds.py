"""Training jobs: they run on the "training" queue, so a GPU worker can take them. The presets are
ml.train_presets.TRAIN_PRESETS; a GPU preset on a worker without CUDA stops at its start saying so."""
from jobs.registry import JobArgumentError, job_kind
from jobs.runner import JobCancelled
from ml.train_presets import DEFAULT_TRAIN_PRESET, TRAIN_PRESETS, CudaUnavailable, cuda_refusal

from .models import TrainingRun


def _train_arguments(arguments: dict) -> dict:
    from curation.models import Snapshot

    snapshot, preset = arguments.get("snapshot"), arguments.get("preset", DEFAULT_TRAIN_PRESET)
    if not Snapshot.objects.filter(name=snapshot, status=Snapshot.Status.READY).exists():
        raise JobArgumentError(f"there is no ready snapshot named {snapshot!r}")
    if preset not in TRAIN_PRESETS:
        raise JobArgumentError(f"preset must be one of {', '.join(TRAIN_PRESETS)}, not {preset!r}")
    overrides = arguments.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise JobArgumentError("overrides must be a JSON object of training settings")
    epochs = arguments.get("epochs")
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise JobArgumentError("epochs must be a whole number >= 1")
        overrides = {**overrides, "epochs": epochs}
    if arguments.get("pretrained"):
        overrides = {**overrides, "model": {**overrides.get("model", {}), "weights_path": str(arguments["pretrained"])}}
    from ml.train import train_config

    try:
        train_config(preset, **overrides)
    except (TypeError, ValueError) as exc:
        raise JobArgumentError(f"these training settings are not valid: {exc}") from exc
    return {"snapshot": snapshot, "preset": preset, "overrides": overrides}


@job_kind("train", queue="training", title="Train a model", validate=_train_arguments,
          reads=("pretrained", "overrides.model.weights_path"))
def train_job(ctx, snapshot: str, preset: str, overrides: dict) -> dict:
    from ml.train import train, train_config

    from .runs import PROGRESS_SPAN, PROGRESS_START, record_epoch, register_model_version, run_dir, run_for_job, training_data_dir

    config = train_config(preset, **overrides)
    refusal = cuda_refusal(preset, config.device)  # a GPU preset here, on a worker without CUDA: say so, never run for hours
    if refusal:
        raise CudaUnavailable(refusal)
    run = run_for_job(ctx.job)  # made with the job when it was started over the API
    ctx.progress(0.01, f"preparing the training data of {snapshot}")
    data = training_data_dir(run.snapshot)

    def on_epoch(entry: dict, model) -> None:
        record_epoch(run, entry)
        val = entry.get("val", {})
        ctx.log(f"epoch {entry.get('epoch')}: loss {entry.get('train_loss', float('nan')):.4f}, val mIoU {val.get('miou', float('nan')):.4f}")

    result = train(config, data, run_dir(run), on_progress=lambda f, m: ctx.progress(PROGRESS_START + PROGRESS_SPAN * f, m),
                   should_stop=lambda: ctx.cancel_requested, on_epoch=on_epoch, resume=True)
    TrainingRun.objects.filter(pk=run.pk).update(result=result)
    if result["status"] == "cancelled":
        raise JobCancelled()
    version = register_model_version(run, result)
    ctx.progress(1.0, f"model {version.name}: val mIoU {version.metrics.get('miou', float('nan')):.4f}")
    return {"run": run.pk, "model_version": version.name, "status": result["status"], "best_metrics": result.get("best_metrics"),
            "epochs_completed": result.get("epochs_completed"), "best_epoch": result.get("best_epoch"),
            "keep": result.get("keep"), "kept_epoch": result.get("kept_epoch"), "kept_metrics": result.get("kept_metrics"),
            "seconds": result.get("seconds")}

from .exports import jobs as export_jobs  # noqa: E402,F401  (the export_model job kind, training/exports/jobs.py)
