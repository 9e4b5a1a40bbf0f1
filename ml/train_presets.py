"""The training presets a user picks from: the one place that says, for each, the budget it runs (model, crops,
epochs x steps x batch), the device it is meant for, and what it was measured at (a ``docs/benchmarks.md``
section and its figure) or that it was not measured. ``ml.train.train_config(name)`` builds its
``TrainConfig``; the training page, the API (its choices and ``GET /api/training-runs/presets/``), the
``train`` job's validation and the ``train`` / ``ablation`` commands read :data:`TRAIN_PRESETS`.

Plain Python without torch (the web process reads this for its pages and API; torch loads on first use).

    from ml.train_presets import TRAIN_PRESETS
    TRAIN_PRESETS["cpu-224"].describe("cpu-224")   # device, budget, measured figure: what the page shows

Devices: a "gpu" preset is meant for a CUDA GPU; on a machine without one (device "auto"), the ``train`` job
stops at its start with :func:`cuda_refusal`'s message instead of running for hours on the CPU (``"device":
"cpu"`` in the overrides runs it there anyway). A "cpu" preset fits a CPU (a GPU runs it too); "tests" is for
tests and demos.

A measured preset's budget is the measured run's: ``tests/test_train_presets.py`` compares it with the
``args`` of the run's JSON under ``docs/results/`` and finds each quoted figure in the section the bench wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["DEFAULT_TRAIN_PRESET", "DEVICES", "KEEP", "TRAIN_PRESETS", "CudaUnavailable", "Measurement", "TrainPreset",
           "bench_warmup_steps", "cuda_refusal", "describe_presets"]

#: What each preset device means for the person picking it.
DEVICES: dict[str, str] = {
    "gpu": "meant for a CUDA GPU: on a training worker without one the run stops at its start and says so "
           '(set "device": "cpu" in the overrides to run it on the CPU anyway)',
    "cpu": "fits a CPU (a GPU runs it too, faster)",
    "tests": "for tests and demos: trains in seconds anywhere; the model is too small to be useful",
}


#: Which epoch's weights a run keeps (``TrainConfig.keep``, a preset's ``keep``).
KEEP = ("best-val", "last")


def bench_warmup_steps(epochs: int, steps_per_epoch: int) -> int:
    """The warm-up of the measured runs (``bench/cv.py``, ``bench/ablation.py``): a tenth of their steps, at
    most 100. A preset with steps per epoch and no ``warmup_steps`` of its own warms up the same."""
    return min(100, epochs * steps_per_epoch // 10)


@dataclass(frozen=True)
class Measurement:
    """Where a preset's figure comes from. ``section``: the ``docs/benchmarks.md`` section a bench wrote;
    ``results``: that run's JSON under ``docs/results/`` (its ``args`` hold the budget it ran); ``rows``: the
    leading cells of the table rows the figure's numbers are read from; ``figure`` and ``time``: what they say."""

    section: str
    results: str
    rows: tuple[str, ...]
    figure: str
    time: str


@dataclass(frozen=True)
class TrainPreset:
    """A named training budget for people. ``model``: a name of ``ml.models.config.MODEL_PRESETS``;
    ``augment``: a name of ``ml.data.AUGMENT_PRESETS``, with its crop size set to ``crop_size``;
    ``steps_per_epoch`` None: one pass over the train split an epoch; ``patience``: epochs without a better
    val mIoU before an early stop; ``warmup_steps`` None: :func:`bench_warmup_steps` of the budget (the
    measured runs' rule; a preset without steps per epoch must set it); ``keep``: the epoch a run keeps
    (``TrainConfig.keep``: "best-val", or "last" for a fixed schedule whose cross-validation scored the last
    epoch ahead); ``settings``: further ``TrainConfig`` fields. ``device``: a key of
    :data:`DEVICES`; ``measured`` None: not measured at this budget (``unmeasured`` says why, or what was)."""

    device: str
    purpose: str
    model: str
    augment: str
    crop_size: int
    epochs: int
    steps_per_epoch: int | None
    batch_size: int
    val_size: int
    lr: float
    patience: int
    warmup_steps: int | None = None
    keep: str = "best-val"
    settings: Mapping[str, Any] = field(default_factory=dict)
    measured: Measurement | None = None
    unmeasured: str = "not measured"

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {', '.join(KEEP)}, got {self.keep!r}")
        if self.warmup_steps is None and not self.steps_per_epoch:
            raise ValueError("a preset without steps per epoch must set warmup_steps (the rule needs the step count)")

    @property
    def warmup(self) -> int:
        """The warm-up steps the preset trains: its own ``warmup_steps`` or the measured runs' rule."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return bench_warmup_steps(self.epochs, self.steps_per_epoch)

    def train_fields(self) -> dict[str, Any]:
        """The ``TrainConfig`` fields of the preset other than ``model`` and ``augment``."""
        return {"epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch, "batch_size": self.batch_size,
                "val_size": self.val_size, "lr": self.lr, "warmup_steps": self.warmup,
                "patience": self.patience, "keep": self.keep, **self.settings}

    @property
    def budget(self) -> str:
        """In words: "8 epochs x 6 steps x batch 8 (384 crops of 224x224), model cascade-55, val at 480 px"."""
        crop = f"{self.crop_size}x{self.crop_size}"
        if self.steps_per_epoch:
            steps = f"{self.steps_per_epoch} steps"
            crops = f"{self.epochs * self.steps_per_epoch * self.batch_size} crops of {crop}"
        else:
            steps, crops = "one pass over the train split", f"crops of {crop}"
        stop = (f", early stop after {self.patience} epochs without a better val mIoU"
                if self.patience < self.epochs else "")
        kept = "the last epoch" if self.keep == "last" else "the best val epoch"
        return (f"{self.epochs} epochs x {steps} x batch {self.batch_size} ({crops}), model {self.model}, "
                f"val at {self.val_size} px{stop}, keeps {kept}")

    @property
    def measured_text(self) -> str:
        m = self.measured
        return f"{m.figure}; {m.time} (docs/benchmarks.md, section {m.section})" if m else self.unmeasured

    def describe(self, name: str) -> dict[str, Any]:
        """What the training page and ``GET /api/training-runs/presets/`` show for the preset ``name``."""
        m = self.measured
        return {
            "name": name, "device": self.device, "device_note": DEVICES[self.device], "purpose": self.purpose,
            "budget": self.budget, "model": self.model, "crop_size": self.crop_size, "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch, "batch_size": self.batch_size,
            "measured": {"section": m.section, "results": m.results, "figure": m.figure, "time": m.time} if m else None,
            "measured_text": self.measured_text,
        }


#: The measured presets' runs (``bench/cv.py``, ``bench/ablation.py``) never stop early (and warm up by
#: :func:`bench_warmup_steps`); the presets do the same.
_NO_EARLY_STOP = 1000

#: The CV table rows (cv-cpu-8x, cv-cpu-16x) the shared-encoder presets quote: their model's, then the U-Net's.
_SHARED_REFINED_AND_UNET_ROWS = (
    "| + cascade, one shared encoder, fusion 128, refined to stride 4 | best-inner-val |",
    "| + cascade, one shared encoder, fusion 128, refined to stride 4 | last |",
    "| U-Net (MobileNetV2 encoder), LMP | best-inner-val |", "| U-Net (MobileNetV2 encoder), LMP | last |")
#: cpu-224-long; cpu-224-longer is it with twice the epochs.
_SHARED_REFINED_8X = TrainPreset(
    device="cpu", purpose="the default's model in half its time (about 3 minutes on 2 CPU cores; 340 s when "
                          "measured in NCHW memory, before channels_last): the cascade with one shared encoder, "
                          "refined to stride 4 (ImageNet-pretrained; level with the U-Net at this budget, 3.35x its "
                          "speed), 8x cpu-224's crops",
    model="cascade-55-shared-f128-refined", augment="web-336", crop_size=224, epochs=32, steps_per_epoch=12,
    batch_size=8, val_size=480, lr=1e-3, patience=_NO_EARLY_STOP, keep="last",
    measured=Measurement(
        section="cv-cpu-8x", results="docs/results/cv-cpu-8x-shared-f128-refined.json",
        rows=_SHARED_REFINED_AND_UNET_ROWS,
        figure="held-out binary mIoU 88.3 ± 3.8 % with the last epoch kept, as a run of this preset keeps it "
               "(87.8 ± 4.6 with the best val epoch; a U-Net under the same budget: 88.2 ± 3.9 and 86.9 ± 3.0), "
               "4-fold participant cross-validation on nails-cc0 (40 photos), each held-out photo at long side 480",
        time="340 s a run on 2 CPU cores (21 train and 6 val photos a fold)"))

TRAIN_PRESETS: dict[str, TrainPreset] = {
    "tiny": TrainPreset(
        device="tests", purpose="tests and demos: a width-0.25 cascade, random init, on 64 px crops",
        model="tiny", augment="tiny", crop_size=64, epochs=2, steps_per_epoch=30, batch_size=8, val_size=64,
        lr=1e-2, patience=1000, warmup_steps=0, settings={"recalibrate_batches": 0, "cache_data": True},
        unmeasured="not measured: too small a model to be useful"),
    "cpu-224": TrainPreset(
        device="cpu", purpose="a first model on a machine without a GPU, in minutes: the cascade with a 256-wide "
                              "fusion (ImageNet-pretrained encoders; as accurate as the paper's 320 in both "
                              "measurements, 2.9x the U-Net's speed) at a reduced budget, small crops and few steps",
        model="cascade-55-f256", augment="web-336", crop_size=224, epochs=8, steps_per_epoch=6, batch_size=8,
        val_size=480, lr=1e-3, patience=_NO_EARLY_STOP, keep="last",
        measured=Measurement(
            section="cv-cpu-input", results="docs/results/cv-cpu-input.json",
            rows=("| + cascade, fusion 256 | best-inner-val |", "| + cascade, fusion 256 | last |",
                  "| + cascade | best-inner-val |", "| + cascade | last |"),
            figure="held-out binary mIoU 73.3 ± 2.5 % with the last epoch kept, as a run of this preset keeps it "
                   "(72.0 ± 2.1 with the best val epoch; the paper's fusion 320: 72.8 ± 3.5 and 72.9 ± 3.2), 4-fold "
                   "participant cross-validation on nails-cc0 (40 photos), each held-out photo at long side 480",
            time="66 s a run on 2 CPU cores (21 train and 6 val photos a fold)")),
    "cpu-224-long": _SHARED_REFINED_8X,
    "cpu-224-longer": replace(
        _SHARED_REFINED_8X,
        purpose="the best model a machine without a GPU trains in minutes (about 5 on 2 cores): the cascade with one "
                "shared encoder, refined to stride 4 (ImageNet-pretrained; ahead of the U-Net at this budget in "
                "cv-cpu-16x, 3.5x its speed), cpu-224-long's budget with twice the epochs (16x cpu-224's crops)",
        epochs=64,
        measured=Measurement(
            section="cv-cpu-16x-channels-last", results="docs/results/cv-cpu-16x-channels-last.json",
            rows=_SHARED_REFINED_AND_UNET_ROWS[:2],
            figure="held-out binary mIoU 89.9 ± 1.7 % with the last epoch kept, as a run of this preset keeps it "
                   "(89.6 ± 2.1 with the best val epoch), 4-fold participant cross-validation on nails-cc0 (40 photos), "
                   "each held-out photo at long side 480",
            time="304 s a run on 2 CPU cores (21 train and 6 val photos a fold)")),
    "gpu-336": TrainPreset(
        device="gpu", purpose="the cascade with a 256-wide fusion for the web (ImageNet-pretrained encoders, 336 px "
                              "crops) at the budget measured on a GPU: as accurate as the paper's 320 there",
        model="cascade-55-f256", augment="web-336", crop_size=336, epochs=25, steps_per_epoch=12, batch_size=16,
        val_size=480, lr=1e-3, patience=_NO_EARLY_STOP,
        measured=Measurement(
            section="ablation-gpu", results="docs/results/ablation-h100-extra-seed0.json",
            rows=("| + cascade, fusion 256 | pretrained (2 seeds) |", "| + cascade | pretrained (2 seeds) |"),
            figure="val binary mIoU 89.9 %, test 82.9 % (best val epoch, mean of 2 seeds; the paper's fusion 320: "
                   "val 89.9 %, test 83.0 %; nails-cc0 split by participant: 26 train, 7 val, 7 test photos)",
            time="49 s a run on one H100 (bf16; the bench used 12 data-loader workers, this preset loads in "
                 "the training process)")),
    "web-336": TrainPreset(
        device="gpu", purpose="the paper's cascade for the web (336 px crops), 60 passes over the train split",
        model="cascade-55", augment="web-336", crop_size=336, epochs=60, steps_per_epoch=None, batch_size=16,
        val_size=480, lr=1e-3, patience=10, warmup_steps=100,
        unmeasured="not measured at this budget: the H100 ablation measured this model at gpu-336's budget "
                   "(25 epochs x 12 steps x batch 16; val 89.9 %, test 83.0 %), where gpu-336's 256-wide fusion "
                   "scored the same"),
    "native-448": TrainPreset(
        device="gpu", purpose="the paper's cascade for phone apps (448 px crops), 60 passes over the train split",
        model="cascade-55", augment="native-448", crop_size=448, epochs=60, steps_per_epoch=None, batch_size=8,
        val_size=640, lr=1e-3, patience=10, warmup_steps=100, unmeasured="not measured"),
}
#: The preset of a run that names none (the API, the ``train`` command, the training page's choice): the
#: measured one that fits any machine (a GPU runs it too) and trains the improved cascade (issue #17) at the
#: budget where it scored best, ahead of the U-Net: about 5 minutes on 2 CPU cores; "cpu-224-long" trains it in
#: half that, "cpu-224" is the 1-minute first look; "tiny" is for tests and demos only.
DEFAULT_TRAIN_PRESET = "cpu-224-longer"


class CudaUnavailable(RuntimeError):
    """A run needs CUDA (:func:`cuda_refusal` says why) and this machine has none."""


def describe_presets() -> list[dict[str, Any]]:
    """Every preset's :meth:`TrainPreset.describe`, in the order of :data:`TRAIN_PRESETS`."""
    return [preset.describe(name) for name, preset in TRAIN_PRESETS.items()]


def cuda_refusal(name: str, device: str, cuda_available: bool | None = None) -> str | None:
    """Why a run of preset ``name`` on ``device`` (its config's) must not start on this machine, or None: a
    "gpu" preset left on "auto", or "cuda" asked for, where CUDA is not available (``cuda_available`` None:
    torch is asked)."""
    needs_cuda = str(device).startswith("cuda") or (device == "auto" and TRAIN_PRESETS[name].device == "gpu")
    if not needs_cuda:
        return None
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if cuda_available:
        return None
    if device != "auto":
        return f"the training settings ask for device {device!r} and this training worker has no CUDA GPU"
    cpu = [n for n, p in TRAIN_PRESETS.items() if p.device == "cpu"]
    return (f"preset {name!r} is meant for a GPU and this training worker has no CUDA GPU: on its CPU the run "
            f"would take hours. Pick a CPU preset ({', '.join(cpu)}), give the training queue a worker with a GPU, "
            f'or set "device": "cpu" in the overrides to run it on the CPU anyway')
