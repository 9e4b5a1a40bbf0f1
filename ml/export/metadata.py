"""The metadata block every artifact carries (``nailset-export.json`` -> ``metadata``; also inside the ONNX
file's ``metadata_props`` and the Core ML package's user-defined metadata): model version, training
snapshot content hash, input size and normalisation, label map, output names and layouts."""
from __future__ import annotations

import platform
from datetime import datetime, timezone
from typing import Any

from torch import nn

from .spec import INPUT_NAME, SIZE_MULTIPLE

SCHEMA = "nailset-export/1"
FINGER_NAMES = {
    hand_offset + i + 1: f"{hand} {name}"
    for hand_offset, hand in ((0, "left"), (5, "right"))
    for i, name in enumerate(("thumb", "index", "middle", "ring", "little"))
}  # = dataset.geometry.FINGER_NAMES (tested): 1-5 left thumb..little, 6-10 right thumb..little


def short_description(model_version: str | None, meta: dict | None) -> str:
    config = ((meta or {}).get("config") or {}).get("model") or {}
    arch = config.get("arch", "cascade")
    what = f"{arch}-{config.get('depth', 55)}" if arch != "unet" else "unet"
    return (f"NailSet fingernail segmentation ({what}, Duke et al. CVPRW 2019 cascade)"
            + (f", model version {model_version}" if model_version else ""))


def _layout(fmt: str) -> dict[str, Any]:
    if fmt == "tfjs":
        return {"layout": "NHWC", "input_shape": ["1", "H", "W", "3"], "channel_axis": -1}
    return {"layout": "NCHW", "input_shape": ["N" if fmt == "onnx" else "1", "3", "H", "W"], "channel_axis": 1}


def build_metadata(model: nn.Module, fmt: str, *, meta: dict | None = None, model_version: str | None = None,
                   snapshot_content_hash: str | None = None, info: dict | None = None) -> dict[str, Any]:
    import torch

    meta = meta or {}
    info = dict(info or {})
    config = getattr(model, "config", None)
    model_config = config.to_dict() if hasattr(config, "to_dict") else ((meta.get("config") or {}).get("model") or {})
    mean = list(getattr(config, "input_mean", (0.485, 0.456, 0.406)))
    std = list(getattr(config, "input_std", (0.229, 0.224, 0.225)))
    num_classes = int(model_config.get("num_classes", 10))
    data = meta.get("data") or {}
    layout = _layout(fmt)
    fixed = info.get("input_size")  # Core ML: [h, w]
    if fmt == "coreml":
        input_block = {
            "name": INPUT_NAME, "type": "image", "color": "RGB", "pixel_range": [0, 255],
            "height": fixed[0] if fixed else None, "width": fixed[1] if fixed else None,
            "scale": "1/255 (image input), then the model's normalisation inside",
        }
    else:
        input_block = {
            "name": INPUT_NAME, "type": "tensor", "dtype": "float32", "color": "RGB", "range": [0.0, 1.0],
            "height": None, "width": None, "dynamic": True,
        }
    input_block.update({
        "size_multiple": SIZE_MULTIPLE,
        "normalization": {"mean": mean, "std": std, "applied": "inside the model: (x - mean) / std on RGB in [0, 1]"},
        "resize": "longer side to the model's evaluation size, both sides multiples of 32, area averaging "
                  "when shrinking (ml.data.resize_for_eval)",
        **layout,
    })
    axis = "C" if layout["layout"] == "NCHW" else "last"
    outputs = [
        {"name": "fg_prob", "channels": 1, "meaning": "nail probability (softmax of the fg/bg logits)",
         "range": [0, 1]},
        {"name": "class_prob", "channels": num_classes,
         "meaning": f"finger-class probabilities, softmax over the {num_classes} classes; channel k-1 = class k",
         "range": [0, 1]},
        {"name": "field", "channels": 2,
         "meaning": "direction field: unit vector from nail base to tip inside nails (x right, y down)"},
    ]
    for o in outputs:
        o["shape"] = (["1", "H", "W", str(o["channels"])] if layout["layout"] == "NHWC"
                      else [layout["input_shape"][0], str(o["channels"]), "H", "W"])
        o["channel_axis"] = axis
    try:
        from ml.predict import heads_trained

        heads = heads_trained(meta)
    except Exception:  # pragma: no cover - ml.predict always imports here
        heads = {"classes": True, "field": True}
    return {
        "schema": SCHEMA,
        "format": fmt,
        "description": short_description(model_version, meta),
        "model_version": model_version,
        "snapshot": data.get("snapshot"),
        "snapshot_content_hash": snapshot_content_hash or data.get("content_hash"),
        "epoch": meta.get("epoch"),
        "metrics": {k: v for k, v in (meta.get("metrics") or {}).items() if isinstance(v, (int, float))},
        "model": model_config,
        "input": input_block,
        "outputs": outputs,
        "label_map": {
            "fg_prob": {"0": "background", "1": "nail"},
            "class_prob": {str(k - 1): {"class": k, "name": FINGER_NAMES.get(k, f"class {k}")}
                           for k in range(1, num_classes + 1)},
        },
        "heads_trained": heads,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tools": {"python": platform.python_version(), "torch": torch.__version__, **info.pop("tools", {})},
        "format_details": info,
    }
