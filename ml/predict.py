"""One photo -> the model's outputs as NumPy arrays at the photo's own size. Plain PyTorch; no Django.

    from ml.predict import Predictor
    predictor = Predictor.from_checkpoint("best.pt")            # ml.checkpoint.load_model under the hood
    pred = predictor(image_rgb)                                 # uint8 H x W x 3
    pred.fg_prob, pred.class_prob, pred.field                   # H x W, H x W x 10 | None, H x W x 2 | None
    nails = ml.postprocess.postprocess(*pred.arrays, image=image_rgb)

Preprocessing is the evaluation's (``ml.data.resize_for_eval``): the photo is resized so that its longer
side is ``size`` (default: the checkpoint's ``TrainConfig.eval_size``) with both sides multiples of 32
(area averaging when shrinking), scaled to [0, 1] RGB. The input normalisation of the model's config
(``ModelConfig.input_mean`` / ``input_std``, the pretrained source's) is applied *inside* the model
(``CascadeNet.normalize``), so it is not repeated here. The outputs are upsampled bilinearly to the photo's
size: fg logits -> nail probability (softmax), class logits -> probabilities (softmax), field as is.

``tta="flip"`` (``Predictor(..., tta="flip")``) runs the network on the photo and on its mirror and averages
them (``ml.tta``): about twice the network's time; the default is ``"none"``.

Heads that the checkpoint's training never supervised (the training data had no finger classes or no
base/tip landmarks: every epoch's class or field loss was 0) are reported as None, so post-processing
falls back to binary instances and shape-based axes instead of reading noise.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ml.data import eval_size_for, resize_for_eval
from ml.tta import check_tta, with_tta

__all__ = ["Prediction", "Predictor", "foreground_at", "heads_trained", "predict"]


@dataclass
class Prediction:
    fg_prob: np.ndarray                    # float32 H x W, nail probability
    class_prob: np.ndarray | None          # float32 H x W x 10 (channel k-1 = finger k), None: not trained
    field: np.ndarray | None               # float32 H x W x 2 (x right, y down), None: not trained
    input_size: tuple[int, int]            # (h, w) the network ran at
    seconds: float = 0.0                   # inference wall time (resize + network + upsampling)
    extra: dict = field(default_factory=dict)

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(fg_prob, class_prob, field)``, the positional arguments of ``ml.postprocess.postprocess``."""
        return self.fg_prob, self.class_prob, self.field


def heads_trained(meta: dict[str, Any] | None) -> dict[str, bool]:
    """Whether the class and field heads of a checkpoint were supervised, from its training history (a
    term is 0 in every epoch when the data had nothing for it). Unknown history: assumed trained."""
    history = (meta or {}).get("history") or []
    if not history:
        return {"classes": True, "field": True}

    def any_positive(key: str) -> bool:
        values = [h.get(key) for h in history if isinstance(h, dict) and h.get(key) is not None]
        return not values or any(v > 0 for v in values)

    return {"classes": any_positive("train_class_loss"), "field": any_positive("train_field_loss")}


class Predictor:
    """A loaded model plus its preprocessing; thread-safe (one inference at a time per predictor)."""

    def __init__(self, model: torch.nn.Module, meta: dict[str, Any] | None = None, size: int | None = None,
                 device: str | torch.device = "cpu", threads: int | None = None, tta: str = "none") -> None:
        self.tta = check_tta(tta)
        self.model = with_tta(model.eval(), self.tta)
        self.meta = meta or {}
        config = self.meta.get("config") or {}
        val_size = config.get("val_size")
        augment = config.get("augment") or {}
        default = val_size or augment.get("base_long_side") or 480
        self.size = int(size or default)
        self.device = torch.device(device)
        self.threads = threads
        self.heads = heads_trained(self.meta)
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, size: int | None = None, device: str = "cpu",
                        threads: int | None = None, tta: str = "none") -> Predictor:
        from ml.checkpoint import load_model  # local: keeps importing ml.predict cheap

        check_tta(tta)  # before the checkpoint is read
        model, meta = load_model(path, device=device)
        return cls(model, meta, size=size, device=device, threads=threads, tta=tta)

    @torch.no_grad()
    def __call__(self, image: np.ndarray, size: int | None = None) -> Prediction:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be uint8 H x W x 3 RGB, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        size = int(size or self.size)
        started = time.perf_counter()
        resized = resize_for_eval(image, size)
        x = torch.from_numpy(np.ascontiguousarray(resized)).to(self.device)
        x = x.permute(2, 0, 1)[None].float().div_(255.0)
        with self._lock:
            old_threads = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                out = self.model(x)
            finally:
                if self.threads:
                    torch.set_num_threads(old_threads)
        if isinstance(out, (list, tuple)) and not hasattr(out, "fg"):
            out = out[0]
        fg, cls, fld = out.fg.float(), out.cls.float(), out.field.float()
        diff = fg[:, 1:2] - fg[:, 0:1]  # softmax of two logits = sigmoid of their difference
        diff = F.interpolate(diff, size=(h, w), mode="bilinear", align_corners=False)
        fg_prob = torch.sigmoid(diff)[0, 0].cpu().numpy()
        class_prob = None
        if self.heads["classes"]:
            cls = F.interpolate(cls, size=(h, w), mode="bilinear", align_corners=False)
            class_prob = torch.softmax(cls, dim=1)[0].permute(1, 2, 0).contiguous().cpu().numpy()
        field_np = None
        if self.heads["field"]:
            fld = F.interpolate(fld, size=(h, w), mode="bilinear", align_corners=False)
            field_np = fld[0].permute(1, 2, 0).contiguous().cpu().numpy()
        return Prediction(fg_prob.astype(np.float32), class_prob, field_np, tuple(resized.shape[:2]),
                          time.perf_counter() - started)

    def input_size_for(self, height: int, width: int, size: int | None = None) -> tuple[int, int]:
        return eval_size_for(height, width, int(size or self.size))


def predict(model_or_path, image: np.ndarray, size: int | None = None, tta: str = "none") -> Prediction:
    """One-off convenience: a checkpoint path or a model, and a uint8 RGB image -> :class:`Prediction`."""
    if isinstance(model_or_path, (str, os.PathLike)):
        predictor = Predictor.from_checkpoint(model_or_path, size=size, tta=tta)
    else:
        predictor = Predictor(model_or_path, size=size, tta=tta)
    return predictor(image, size)


def foreground_at(fg_prob: np.ndarray, height: int, width: int) -> np.ndarray:
    """The nail probability of a prediction at another size (the network's input size, say) upsampled to
    ``height`` x ``width`` as :meth:`Predictor.__call__` upsamples its own: bilinearly in logits (half-pixel
    centres, as ``F.interpolate(align_corners=False)``), then the sigmoid. Answered as uint8 (255 = nail: a
    12 MP map is 12 MB, not 48), what click-a-nail reads."""
    prob = np.clip(np.asarray(fg_prob, np.float32), 1e-6, 1 - 1e-6)
    logits = np.log(prob / (1 - prob))
    if logits.shape != (height, width):
        logits = cv2.resize(logits, (width, height), interpolation=cv2.INTER_LINEAR)
    out = np.empty((height, width), np.float32)
    np.negative(logits, out=out)
    np.exp(out, out=out)
    out += 1
    np.divide(255.0, out, out=out)
    return np.rint(out, out=out).astype(np.uint8)
