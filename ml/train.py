"""Training of the cascade on a "masks" export: CPU or CUDA, checkpoints, exact resume, early stopping.

Plain PyTorch; never imports Django (the Celery job and ``manage.py train`` wrap :func:`train`).

    from ml.train import train
    result = train("tiny", data_dir="export/", out_dir="runs/1", epochs=2,
                   on_progress=lambda fraction, message: ..., should_stop=lambda: False)
    result["checkpoint"]        # best.pt (weights + config + metrics); result["history"]: per epoch

Design (details in ``docs/model.md``):
* Config: :class:`TrainConfig` (model, augmentation, loss, optimisation; JSON round trip); a preset's
  (:func:`preset_config`) is built from :data:`ml.train_presets.TRAIN_PRESETS`, which also says the device
  each is meant for, its budget and what it was measured at.
* Reproducible (``seed``: initialisation, sample order, augmentation; independent of DataLoader workers).
* ``last.pt`` after every epoch, written atomically: everything an exact resume needs (``resume=True``: a run
  killed in epoch e repeats it and ends with the same weights). ``best.pt``: the weights the run keeps
  (``TrainConfig.keep``: the best val epoch's, or the last epoch's). Saving and loading: :mod:`ml.checkpoint`.
* :func:`train` is made of testable steps: :func:`resume_checkpoint`, :func:`start_run` / :func:`restore_run`,
  :func:`train_epoch`, :func:`epoch_record`, :func:`track_best`, :func:`keep_epoch`, :func:`training_checkpoint`.
* Per epoch on val (:mod:`ml.metrics`); early stopping after ``patience`` epochs without a better val mIoU
  (train mIoU is the monitor when the export has no val images).
* Callbacks: ``on_progress(fraction, message)``; ``should_stop()`` before each step (True: stop, status
  "cancelled"); ``on_epoch(record, model)`` after each epoch's checkpoint, with the trainer's own model (in
  training mode: a callback may score it in eval mode under ``no_grad``, and must give it back unchanged).
* Device "auto": CUDA when available, else CPU; mixed precision on CUDA. TFLite-pretrained encoders get
  their folded batch-norm statistics measured on training crops before the first step.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ml.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    load_checkpoint,
    load_model,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ml.data import AUGMENT_PRESETS, AugmentConfig, MasksDataset
from ml.dataclass_dicts import from_known_keys
from ml.device import amp_dtype as device_amp_dtype, memory_format, resolve_device
from ml.losses import CascadeLoss, LossConfig
from ml.metrics import SegmentationMetrics
from ml.models.config import ModelConfig, model_config
from ml.models.registry import build_model
from ml.train_presets import KEEP, TRAIN_PRESETS
from ml.weights.loading import recalibrate_batchnorm
from ml.weights.sources import WEIGHT_SOURCES

__all__ = [
    "EpochOutcome", "TrainConfig", "TrainingRun", "epoch_record", "preset_config", "restore_run",
    "resume_checkpoint", "save_epoch_checkpoints", "start_run", "track_best", "train", "train_config",
    "train_epoch", "training_checkpoint", "validate",
]

LAST, BEST = "last.pt", "best.pt"
#: Fields that may differ between a run and its resumption (they do not change the computation on CPU).
RESUMABLE_CHANGES = frozenset({"device", "num_workers"})


@dataclass(frozen=True)
class TrainConfig:
    """A training run. ``val_size``: longer side of val images (multiple of 32; None = the augment's
    base long side). ``steps_per_epoch``: None = one pass over train (``len // batch_size``, at least 1);
    more cycles over fresh permutations. ``recalibrate_batches``: batches used to measure BN statistics
    of TFLite-pretrained encoders (0: off). ``cache_data``: keep decoded images in memory (small
    exports). ``lr`` follows a poly schedule (power ``poly_power``) over all
    steps of ``epochs``, after ``warmup_steps`` of linear warm-up. ``teacher``: a trained model's checkpoint
    (any architecture) whose nail/background predictions on each training crop the model also learns from
    (knowledge distillation, ``loss.distill_*``: :func:`ml.losses.distillation_kl`); None: labels only.
    ``keep``: the epoch ``best.pt`` holds and the platform registers (:data:`KEEP`; early stopping watches val
    mIoU either way). ``amp``: mixed precision on a GPU; ``cpu_amp``: bfloat16 autocast on a CPU that has it
    natively (:func:`ml.device.amp_dtype`; float32 on other CPUs). ``channels_last``: the weights and batches in
    NHWC (:func:`ml.device.memory_format`; half the training time on a CPU, the same results up to rounding)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    epochs: int = 60
    batch_size: int = 8
    steps_per_epoch: int | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    poly_power: float = 0.9
    grad_clip: float | None = None
    patience: int = 10
    val_size: int | None = None
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    amp: bool = True
    cpu_amp: bool = False
    channels_last: bool = True
    recalibrate_batches: int = 4
    max_train_images: int | None = None
    max_val_images: int | None = None
    cache_data: bool = False
    teacher: str | None = None
    keep: str = "best-val"

    def __post_init__(self) -> None:
        if isinstance(self.model, Mapping):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        if isinstance(self.augment, Mapping):
            object.__setattr__(self, "augment", AugmentConfig.from_dict(self.augment))
        if isinstance(self.loss, Mapping):
            object.__setattr__(self, "loss", LossConfig(**self.loss))
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {', '.join(KEEP)}, got {self.keep!r}")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["model"] = self.model.to_dict()
        d["augment"] = self.augment.to_dict()
        d["loss"] = asdict(self.loss)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        return from_known_keys(cls, data, "train")

    @property
    def eval_size(self) -> int:
        return self.val_size or self.augment.long_side


def preset_config(name: str) -> TrainConfig:
    """The :class:`TrainConfig` of the preset ``name`` of :data:`ml.train_presets.TRAIN_PRESETS`."""
    try:
        preset = TRAIN_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown train preset {name!r}; known: {', '.join(TRAIN_PRESETS)}") from None
    augment = replace(AUGMENT_PRESETS[preset.augment], crop_size=preset.crop_size)
    return TrainConfig(model=model_config(preset.model), augment=augment, **preset.train_fields())


def train_config(config: TrainConfig | Mapping[str, Any] | str = "tiny", **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a preset name, a config or a dict, with overrides. ``model``,
    ``augment`` and ``loss`` overrides may be dicts of field changes (merged), e.g.
    ``train_config("web-336", epochs=5, model={"fusion_width": 128, "arch": "baseline"})``."""
    if isinstance(config, str):
        base = preset_config(config)
    elif isinstance(config, TrainConfig):
        base = config
    elif isinstance(config, Mapping):
        base = TrainConfig.from_dict(config)
    else:
        raise TypeError(f"expected a TrainConfig, dict or preset name, got {type(config).__name__}")
    changes = dict(overrides)
    if isinstance(changes.get("model"), Mapping):
        changes["model"] = base.model.replace(**changes["model"])
    if isinstance(changes.get("augment"), Mapping):
        changes["augment"] = AugmentConfig.from_dict({**base.augment.to_dict(), **changes["augment"]})
    if isinstance(changes.get("loss"), Mapping):
        changes["loss"] = LossConfig(**{**asdict(base.loss), **changes["loss"]})
    return replace(base, **changes) if changes else base

# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------


def _order(n: int, seed: int, epoch: int, count: int) -> list[int]:
    """``count`` dataset keys for an epoch: concatenated seeded permutations of ``range(n)``, the r-th
    permutation offset by ``r * n`` (``MasksDataset`` reads key k as draw k // n of image k % n, so a
    repeated image gets a fresh augmentation)."""
    rng = np.random.default_rng([seed, 1, epoch])
    reps = -(-count // n)
    return np.concatenate([rng.permutation(n) + r * n for r in range(reps)])[:count].tolist()


def _poly_lambda(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    warm, power = config.warmup_steps, config.poly_power

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        return max(0.0, 1.0 - step / max(1, total_steps)) ** power

    return factor


class _Encoders(nn.Module):
    """The encoders of a model, run on the model's input path: ``recalibrate_batchnorm`` on this module
    measures (and rewrites) the encoders' batch norms only; the decoder is neither run nor touched."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_model", model)  # not a submodule
        self.parts = nn.ModuleList(
            [m for m in (getattr(model, "low", None), getattr(model, "high", None),
                         getattr(model, "encoder", None), getattr(model, "encoder_head", None)) if m is not None]
        )

    def forward(self, images: torch.Tensor) -> None:
        m = self._model
        x = (images - m.input_mean) / m.input_std
        if hasattr(m, "low"):
            m.low(m.low_input(x))  # at the resolution the model's forward gives it (low_downsample)
            if m.high is not None:
                m.high(x)
        else:
            m.encoder_head(m.encoder(x))


def _recalibrate(model: nn.Module, dataset: MasksDataset, config: TrainConfig, device: torch.device) -> bool:
    source = model.config.pretrained
    if not config.recalibrate_batches or source is None or WEIGHT_SOURCES[source].format != "tflite":
        return False
    epoch = dataset.epoch
    dataset.set_epoch(2**31 - 1)  # a stream of crops no real epoch uses
    try:
        n = min(len(dataset), config.recalibrate_batches * config.batch_size)
        batches = []
        for start in range(0, n, config.batch_size):
            items = [dataset[i] for i in range(start, min(n, start + config.batch_size))]
            batches.append(torch.stack([it["image"] for it in items]).to(device))
        recalibrate_batchnorm(_Encoders(model), batches)
    finally:
        dataset.set_epoch(epoch)
    return True


def _to(batch: Mapping[str, torch.Tensor], device: torch.device, images=torch.contiguous_format) -> dict:
    return {k: v.to(device, non_blocking=True, memory_format=images if k == "image" else torch.preserve_format)
            for k, v in batch.items()}


@torch.no_grad()
def validate(model: nn.Module, dataset: MasksDataset, device: torch.device | str = "cpu",
             amp_dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Metrics (:class:`ml.metrics.SegmentationMetrics`) of ``model`` on an eval-mode dataset."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    metrics = SegmentationMetrics()
    try:
        for i in range(len(dataset)):
            item = dataset[i]
            image = item["image"][None].to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out = model(image)
            metrics.update_outputs(out, {k: v.to(device) for k, v in item.items() if k != "image"})
    finally:
        model.train(was_training)
    return metrics.compute()


@dataclass
class TrainingRun:
    """The mutable state of a run: what ``last.pt`` holds beside the config, and what each epoch moves on."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    criterion: CascadeLoss
    teacher: nn.Module | None = None  # frozen, eval mode (TrainConfig.teacher)
    history: list[dict] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "monitor": -math.inf, "metrics": None})
    kept: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "metrics": None})  # best.pt's epoch
    bad_epochs: int = 0
    epoch: int = 0  # epochs completed
    global_step: int = 0


@dataclass
class EpochOutcome:
    """What one epoch of steps leaves: the summed loss parts, the train metrics, the steps done, and
    whether ``should_stop`` cancelled it."""

    sums: dict[str, float]
    metrics: SegmentationMetrics
    steps: int
    cancelled: bool


def resume_checkpoint(config: TrainConfig, out: Path, resume: bool | str | os.PathLike | None
                      ) -> tuple[dict[str, Any] | None, Path | None]:
    """The checkpoint a run continues from, and its path: ``out/last.pt`` for ``resume=True`` when it exists,
    the given path, or none (``False`` / None / no ``last.pt``). Its config must be ``config`` except for
    :data:`RESUMABLE_CHANGES`; else ValueError."""
    resume_path = None
    if resume is True and (out / LAST).is_file():
        resume_path = out / LAST
    elif resume not in (True, False, None):
        resume_path = Path(resume)
    if resume_path is None:
        return None, None
    ckpt = load_checkpoint(resume_path)
    saved = TrainConfig.from_dict(ckpt["config"]).to_dict()
    now = config.to_dict()
    diff = sorted(k for k in now if k not in RESUMABLE_CHANGES and now[k] != saved.get(k))
    if diff:
        raise ValueError(f"cannot resume from {resume_path}: the config differs in {', '.join(diff)}")
    return ckpt, resume_path


def start_run(config: TrainConfig, device: torch.device, amp_dtype: torch.dtype | None, total_steps: int,
              load_pretrained: bool) -> TrainingRun:
    """A fresh run: seeded RNGs, the model (with its pretrained encoders unless ``load_pretrained`` is
    False, for a resume), AdamW, the poly LR schedule, a grad scaler for fp16 on CUDA, the loss, and the
    teacher model when the config names one (frozen, in eval mode)."""
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    model = build_model(config.model, load_pretrained=load_pretrained)
    model = model.to(device, memory_format=memory_format(config.channels_last))
    if device.type == "cpu" or amp_dtype != torch.float16:
        scaler = None
    else:
        scaler = torch.amp.GradScaler("cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _poly_lambda(config, total_steps))
    teacher = load_model(config.teacher, device)[0].requires_grad_(False) if config.teacher else None
    return TrainingRun(model, optimizer, scheduler, scaler, CascadeLoss(config.loss), teacher)


def restore_run(run: TrainingRun, ckpt: Mapping[str, Any]) -> None:
    """Put a ``last.pt`` checkpoint's state into ``run``: weights, optimizer, schedule, scaler, history,
    early-stopping state, counters and the RNG states, so that the run continues exactly."""
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    if run.scaler is not None and ckpt.get("scaler"):
        run.scaler.load_state_dict(ckpt["scaler"])
    run.history = list(ckpt["history"])
    run.best = dict(ckpt["best"])
    run.best["monitor"] = -math.inf if run.best["monitor"] is None else run.best["monitor"]
    run.kept = dict(ckpt.get("kept") or {"epoch": run.best["epoch"], "metrics": run.best["metrics"]})  # older: best
    run.bad_epochs = int(ckpt["bad_epochs"])
    run.epoch = int(ckpt["epoch"])
    run.global_step = int(ckpt["global_step"])
    set_rng_state(ckpt["rng"])


def _optimizer_step(run: TrainingRun, loss: torch.Tensor, grad_clip: float | None) -> None:
    run.optimizer.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        if grad_clip:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(run.model.parameters(), grad_clip)
        run.optimizer.step()
    run.scheduler.step()


def train_epoch(run: TrainingRun, train_set: MasksDataset, config: TrainConfig, steps: int, device: torch.device,
                amp_dtype: torch.dtype | None, progress: Callable[[float, str], Any],
                stop: Callable[[], bool]) -> EpochOutcome:
    """The steps of epoch ``run.epoch`` (0-based) over its seeded sample order; ``stop()`` is asked before
    each step. Moves ``run.global_step`` on; does not validate nor save."""
    epoch = run.epoch
    total_steps = steps * config.epochs
    run.model.train()
    train_set.set_epoch(epoch)
    if config.num_workers:  # with cache_data the workers forked below share what is decoded here once
        train_set.fill_cache()
    order = _order(len(train_set), config.seed, epoch, steps * config.batch_size)
    loader = DataLoader(train_set, batch_size=config.batch_size, sampler=order,
                        num_workers=config.num_workers, pin_memory=device.type == "cuda",
                        drop_last=False, persistent_workers=False)
    outcome = EpochOutcome({"total": 0.0, "fg": 0.0, "cls": 0.0, "field": 0.0, "iou": 0.0, "distill": 0.0},
                           SegmentationMetrics(), 0, False)
    iterator, images = iter(loader), memory_format(config.channels_last)
    for step in range(steps):
        if stop():
            outcome.cancelled = True
            break
        batch = _to(next(iterator), device, images)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            if run.teacher is not None:
                with torch.no_grad():
                    batch["teacher_fg"] = run.teacher(batch["image"]).fg
            outputs = run.model(batch["image"])
        loss, parts = run.criterion(outputs, batch)
        _optimizer_step(run, loss, config.grad_clip)
        run.global_step += 1
        outcome.steps += 1
        for k in outcome.sums:
            outcome.sums[k] += parts[k]
        with torch.no_grad():
            final = outputs[0] if isinstance(outputs, list) else outputs
            outcome.metrics.update(final.fg.argmax(1) == 1, batch["fg"], batch["ignore"])
        progress(run.global_step / total_steps,
                 f"epoch {epoch + 1}/{config.epochs} step {step + 1}/{steps} loss {parts['total']:.4f}")
    del iterator, loader
    return outcome


def epoch_record(run: TrainingRun, outcome: EpochOutcome, train_metrics: dict[str, Any], val: dict | None,
                 seconds: float) -> dict[str, Any]:
    """The history record of the epoch just trained (``run.epoch`` 0-based)."""
    done = outcome.steps
    return {
        "epoch": run.epoch + 1,
        "steps": done,
        "lr": run.optimizer.param_groups[0]["lr"],
        "train_loss": outcome.sums["total"] / max(1, done),
        "train_fg_loss": outcome.sums["fg"] / max(1, done),
        "train_class_loss": outcome.sums["cls"] / max(1, done),
        "train_field_loss": outcome.sums["field"] / max(1, done),
        "train_distill_loss": outcome.sums["distill"] / max(1, done),
        "train_iou_loss": outcome.sums["iou"] / max(1, done),
        "train_miou": train_metrics["miou"],
        "train_nail_iou": train_metrics["nail_iou"],
        "val": val,
        "seconds": seconds,
    }


def track_best(run: TrainingRun, train_metrics: dict[str, Any], val: dict | None) -> bool:
    """Update the best epoch and the early-stopping count with the epoch just trained (monitor: val mIoU,
    train mIoU without val images); True when it is the best so far."""
    monitor = (val["miou"] if val and val["miou"] is not None else train_metrics["miou"]) or 0.0
    improved = monitor > run.best["monitor"]
    if improved:
        run.best = {"epoch": run.epoch + 1, "monitor": monitor, "metrics": val if val else train_metrics}
        run.bad_epochs = 0
    else:
        run.bad_epochs += 1
    return improved


def training_checkpoint(run: TrainingRun, config: TrainConfig, status: str, finished: bool,
                        data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``last.pt`` checkpoint after ``run.epoch`` completed epochs: everything an exact resume needs."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": config.to_dict(),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
        "rng": rng_state(),
        "epoch": run.epoch,
        "global_step": run.global_step,
        "history": run.history,
        "best": run.best,
        "kept": run.kept,
        "bad_epochs": run.bad_epochs,
        "finished": finished,
        "status": status if finished else "running",
        "data": dict(data),
    }


def keep_epoch(run: TrainingRun, config: TrainConfig, improved: bool, metrics: dict[str, Any]) -> bool:
    """Whether the epoch just trained is the one to keep (``config.keep``); if so it becomes ``run.kept``."""
    if config.keep == "best-val" and not improved:
        return False
    run.kept = {"epoch": run.epoch + 1, "metrics": metrics}
    return True


def save_epoch_checkpoints(state: Mapping[str, Any], out: Path, kept: bool) -> None:
    """``best.pt`` (the weights, config and metrics, when the epoch is the ``kept`` one), ``last.pt`` and
    ``history.json`` of a completed epoch."""
    if kept:
        save_checkpoint({k: state[k] for k in ("format", "version", "config", "model", "epoch", "data")}
                        | {"metrics": state["kept"]["metrics"], "history": state["history"]}, out / BEST)
    save_checkpoint(dict(state), out / LAST)
    (out / "history.json").write_text(json.dumps(state["history"], indent=1))


def train(
    config: TrainConfig | Mapping[str, Any] | str = "tiny",
    data_dir: str | os.PathLike = ".",
    out_dir: str | os.PathLike = "runs/train",
    *,
    on_progress: Callable[[float, str], Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[dict, nn.Module], Any] | None = None,
    resume: bool | str | os.PathLike = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Train on the train split of the masks export ``data_dir`` (folder or zip), validating on its val
    split; write ``last.pt`` / ``best.pt`` / ``history.json`` into ``out_dir``.

    ``config``: a preset name (:data:`ml.train_presets.TRAIN_PRESETS`), a :class:`TrainConfig` or a dict;
    ``overrides``: :func:`train_config` changes (``epochs=2``, ``device="cpu"``, ``model={...}``).
    ``resume``: True continues from ``out_dir/last.pt`` when it exists (its config must match, except
    ``device`` / ``num_workers``); False starts afresh; a path resumes from that checkpoint.

    Returns ``{"status": "completed" | "early_stopped" | "cancelled", "epochs_completed", "best_epoch",
    "best_metrics" (the best val mIoU epoch's), "keep", "kept_epoch", "kept_metrics" (the epoch ``best.pt``
    holds, per ``config.keep``), "history", "checkpoint" (best.pt or None), "last_checkpoint", "config",
    "device", "seconds"}``.
    """
    started = time.monotonic()
    config = train_config(config, **overrides)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    amp_dtype = device_amp_dtype(device, cuda=config.amp, cpu=config.cpu_amp)
    progress = on_progress or (lambda fraction, message: None)
    stop = should_stop or (lambda: False)

    train_set = MasksDataset(data_dir, "train", train=True, augment=config.augment, seed=config.seed,
                             max_images=config.max_train_images, cache=config.cache_data)
    if len(train_set) == 0:
        raise ValueError(f"{data_dir}: the masks export has no train images")
    val_set = MasksDataset(data_dir, "val", train=False, eval_size=config.eval_size, seed=config.seed,
                           max_images=config.max_val_images, cache=config.cache_data)
    steps = config.steps_per_epoch or max(1, len(train_set) // config.batch_size)
    total_steps = steps * config.epochs

    ckpt, resume_path = resume_checkpoint(config, out, resume)
    run = start_run(config, device, amp_dtype, total_steps, load_pretrained=ckpt is None)
    if ckpt is not None:
        restore_run(run, ckpt)
        progress(run.global_step / total_steps, f"resumed from {resume_path.name} after epoch {run.epoch}")
        if ckpt.get("finished"):
            return _result(ckpt.get("status", "completed"), config, out, run, device, started)
    else:
        for name in (LAST, BEST):
            if (out / name).exists():
                (out / name).unlink()
        if _recalibrate(run.model, train_set, config, device):
            progress(0.0, "measured batch-norm statistics of the pretrained encoders")

    status = "completed"
    data = {k: train_set.manifest_info.get(k) for k in ("snapshot", "content_hash")}
    while run.epoch < config.epochs:
        epoch_started = time.monotonic()
        outcome = train_epoch(run, train_set, config, steps, device, amp_dtype, progress, stop)
        if outcome.cancelled:
            status = "cancelled"
            progress(run.global_step / total_steps, f"cancelled in epoch {run.epoch + 1}; last checkpoint kept")
            break
        val = validate(run.model, val_set, device, amp_dtype) if len(val_set) else None
        train_m = outcome.metrics.compute()
        record = epoch_record(run, outcome, train_m, val, time.monotonic() - epoch_started)
        run.history.append(record)
        improved = track_best(run, train_m, val)
        kept = keep_epoch(run, config, improved, val if val else train_m)
        stopping = run.bad_epochs >= config.patience and run.epoch + 1 < config.epochs
        finished = stopping or run.epoch + 1 == config.epochs
        if stopping:
            status = "early_stopped"
        run.epoch += 1
        save_epoch_checkpoints(training_checkpoint(run, config, status, finished, data), out, kept)
        if on_epoch is not None:
            on_epoch(record, run.model)
        vm = val["miou"] if val else None
        progress(run.global_step / total_steps,
                 f"epoch {run.epoch}/{config.epochs} done: loss {record['train_loss']:.4f}"
                 + (f", val mIoU {vm:.4f}" if vm is not None else "")
                 + (" (best)" if improved else ""))
        if stopping:
            progress(run.global_step / total_steps, f"early stop: no better val mIoU for {run.bad_epochs} epochs")
            break
    return _result(status, config, out, run, device, started)


def _result(status: str, config: TrainConfig, out: Path, run: TrainingRun, device: torch.device,
            started: float) -> dict[str, Any]:
    return {
        "status": status,
        "epochs_completed": len(run.history),
        "best_epoch": run.best["epoch"],
        "best_metrics": run.best["metrics"],
        "keep": config.keep, "kept_epoch": run.kept["epoch"], "kept_metrics": run.kept["metrics"],
        "history": run.history,
        "checkpoint": str(out / BEST) if (out / BEST).is_file() else None,
        "last_checkpoint": str(out / LAST) if (out / LAST).is_file() else None,
        "config": config.to_dict(),
        "device": str(device),
        "seconds": time.monotonic() - started,
    }
