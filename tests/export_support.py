"""Helpers of the export tests: a tiny trained-looking model, its checkpoint and ModelVersion."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ml.models.cascade import cascade_net
from ml.export.photos import DEFAULT_PHOTOS_DIR, photos_dir


def tiny_model(seed: int = 0, val_size: int = 128, preset: str = "tiny"):
    """The "tiny" cascade (width 0.25, fusion 32; ``preset="tiny-refined"``: with the boundary refinement) with
    TF "SAME" padding (as the ImageNet-pretrained models have) and random batch-norm statistics, so that
    folding, padding and every head matter."""
    torch.manual_seed(seed)
    model = cascade_net(preset, tf_padding=True)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        for head in (model.head.fg, model.head.cls, model.head.field):
            head.weight.mul_(30.0)  # logits of a few units, as a trained model's, not ~0
    model.eval()
    meta = {"config": {"val_size": val_size}, "epoch": 3, "metrics": {"miou": 0.5},
            "data": {"snapshot": "export-test", "content_hash": "c0ffee" * 10 + "abcd"}}
    return model, meta


def tiny_train_config(val_size: int = 128):
    from ml.train import train_config

    return train_config("tiny", val_size=val_size, model={"tf_padding": True})


def checkpoint_bytes(model, val_size: int = 128) -> bytes:
    from ml.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    config = tiny_train_config(val_size)
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": config.to_dict(),
                "model": model.state_dict(), "epoch": 3, "data": {"snapshot": "export-test", "content_hash": "ab" * 32},
                "metrics": {"miou": 0.5}, "history": []}, buffer)
    return buffer.getvalue()


def make_model_version(name: str = "export-test-tiny", seed: int = 0):
    from django.core.files.base import ContentFile

    from training.models import ModelVersion

    model, _ = tiny_model(seed)
    version = ModelVersion(name=name, config=tiny_train_config().to_dict(), metrics={"miou": 0.5},
                           snapshot_content_hash="ab" * 32)
    version.weights.save("model.pt", ContentFile(checkpoint_bytes(model)), save=False)
    version.save()
    return version


def expect_real_photos(report: dict) -> None:
    """Where the shared photos exist (CI, developers), parity must have run on them, never synthetic."""
    if photos_dir() is not None or Path(DEFAULT_PHOTOS_DIR).is_dir():
        assert report["images"] and not any(i["synthetic"] for i in report["images"]), report["images"]
