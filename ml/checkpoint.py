"""NailSet model checkpoints: their format, atomic saving and loading, and the trained model of one.
Used by training (``last.pt`` / ``best.pt``) and inference (:mod:`ml.predict`, :mod:`ml.evaluate`, exports)
alike; plain PyTorch, never imports Django nor the trainer.

A checkpoint is a dict saved with ``torch.save``: ``format`` (:data:`CHECKPOINT_FORMAT`), ``version``
(:data:`CHECKPOINT_VERSION`), ``config`` (the ``ml.train.TrainConfig`` as a dict; its ``model`` entry is the
:class:`ml.models.config.ModelConfig`), ``model`` (the state dict), ``epoch``, ``metrics``, ``history``,
``data``; ``last.pt`` adds the optimizer, scheduler, grad scaler and RNG states of an exact resume.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.device import resolve_device
from ml.models.config import ModelConfig
from ml.models.registry import build_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "load_checkpoint",
    "load_model",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "nailset-cascade-checkpoint"
CHECKPOINT_VERSION = 1
#: Entries of a checkpoint that are training state, not metadata of the trained model.
TRAINING_STATE = ("model", "optimizer", "scheduler", "scaler", "rng")


def save_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``checkpoint`` to ``path`` atomically: a temporary file in the same folder, fsync, rename (and
    fsync of the folder), so a reader or a crash never sees half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(checkpoint, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint dict (``last.pt`` or ``best.pt``), checked for format."""
    ckpt = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a NailSet model checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {ckpt.get('version')!r} is not supported")
    return ckpt


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a checkpoint (eval mode, on ``device``) and the checkpoint's metadata
    (``config``, ``metrics``, ``epoch``...). Pretrained weight files are not needed."""
    ckpt = load_checkpoint(path)
    model = build_model(ModelConfig.from_dict(ckpt["config"]["model"]), load_pretrained=False)
    model.load_state_dict(ckpt["model"])
    model.to(resolve_device(device)).eval()
    meta = {k: v for k, v in ckpt.items() if k not in TRAINING_STATE}
    return model, meta


def rng_state() -> dict[str, Any]:
    """The Python, NumPy, torch (and CUDA) RNG states, as a checkpoint stores them (tensors and plain
    values only, so ``weights_only`` loading reads them)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the RNG states of :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
