"""The try-on pipeline behind the API and ``manage.py render``: photo in, painted photo out.

Model path: the active (or a named) ``training.ModelVersion`` -> its ``ml.predict.Predictor`` (from
training/serving.py, the process's one predictor cache, shared with pre-labeling) ->
``ml.postprocess.postprocess`` -> ``ml.render.render``. Labels path: a platform image's current geometry ->
``ml.render.render``. Uploaded photos are decoded in memory through the intake's checks
(content sniffed, size limits, EXIF orientation, sRGB) and never stored.
"""
from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from PIL import Image as PILImage

from labeling.intake import PHOTO_TYPES, RejectedFile, normalized_photo, sniff_content_type
from ml.postprocess import config_dict, postprocess, to_dicts
from ml.render import FINISHES, PALETTE, parse_color, render
from training.models import ModelVersion
from training.serving import predictor_for

#: Photos are rendered at most this large (longer side, px); larger ones are shrunk first.
MAX_SIDE = 1600


class NoActiveModel(Exception):
    """No ModelVersion is active: the model path cannot run."""


class UnknownModel(Exception):
    pass


@dataclass
class TryOnResult:
    image: np.ndarray                 # uint8 RGB, painted
    source: str                       # "model" or "labels"
    model: str | None
    nails: list[dict]
    timings_ms: dict = field(default_factory=dict)


def model_named(name: str) -> ModelVersion:
    version = ModelVersion.objects.filter(name=name).first()
    if version is None:
        known = ", ".join(ModelVersion.objects.values_list("name", flat=True)[:20]) or "none"
        raise UnknownModel(f"no model version named {name!r} (known: {known})")
    return version


def model_info(version: ModelVersion | None) -> dict | None:
    if version is None:
        return None
    return {"name": version.name, "created_at": version.created_at.isoformat() if version.created_at else None,
            "metrics": {k: v for k, v in (version.metrics or {}).items() if isinstance(v, (int, float))},
            "tfjs": tfjs_export(version)}


def tfjs_export(version: ModelVersion | None) -> dict | None:
    """The model's newest TF.js export whose parity passed (training.ModelArtifact, ml/export/), as the
    browser needs it: where the graph model is, its input and output node names (the converter renames
    them; docs/export.md), the input size rule and where TF.js itself is served. None without one."""
    if version is None:
        return None
    artifact = version.artifacts.filter(format="tfjs", passed=True).order_by("-created_at", "-id").first()
    if artifact is None:
        return None
    from django.templatetags.static import static

    details = artifact.metadata.get("format_details") or {}
    config = version.config or {}
    long_side = config.get("val_size") or (config.get("augment") or {}).get("long_side") or 480
    heads = artifact.metadata.get("heads_trained") or {}
    return {"artifact": artifact.pk, "model_url": f"/api/model-artifacts/{artifact.pk}/files/model.json",
            "input_node": details.get("input_node"), "output_nodes": details.get("output_nodes"),
            "layout": "NHWC", "size_multiple": 32, "long_side": int(long_side), "quantize": details.get("quantize"),
            "tfjs_url": static("tfjs/tf.min.js"), "max_abs_diff": artifact.parity.get("max_abs_diff"),
            # heads the training never supervised are ignored, as ml.predict.Predictor does (binary mode)
            "heads": {"classes": bool(heads.get("classes", True)), "field": bool(heads.get("field", True))}}


def load_photo(fileobj, max_side: int = MAX_SIDE) -> np.ndarray:
    """An uploaded photo as uint8 RGB (orientation applied, sRGB), shrunk to ``max_side``; RejectedFile
    when it is not a photo we accept."""
    head = fileobj.read(64)
    fileobj.seek(0)
    kind = sniff_content_type(head)
    if kind not in PHOTO_TYPES:
        raise RejectedFile("send a photo (JPEG, PNG, WebP or HEIC); videos are not rendered here")
    size = getattr(fileobj, "size", None)
    if size is not None and size > settings.NAILSET_MAX_PHOTO_BYTES:
        raise RejectedFile(f"the photo is larger than {settings.NAILSET_MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    picture, _ = normalized_photo(fileobj)
    return shrink(np.asarray(picture.convert("RGB")), max_side)


def platform_photo(image) -> np.ndarray:
    """A labeling.Image's stored pixels (already normalized at intake) as uint8 RGB, full size."""
    with image.file.open("rb") as fh:
        return np.asarray(PILImage.open(fh).convert("RGB"))


def shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    picture = PILImage.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))), PILImage.LANCZOS)
    return np.asarray(picture)


def _scale_geometry(geometry: dict, sx: float, sy: float) -> dict:
    from dataset.raster import scale_geometry

    return scale_geometry(geometry, sx, sy)


def render_with_labels(rgb: np.ndarray, geometry: dict, color: str, finish: str,
                       original_size: tuple[int, int] | None = None) -> TryOnResult:
    """Paint the labelled nails; ``original_size`` (w, h): the size the geometry's coordinates refer to
    when ``rgb`` was shrunk."""
    started = time.perf_counter()
    if original_size and tuple(original_size) != (rgb.shape[1], rgb.shape[0]):
        geometry = _scale_geometry(geometry, rgb.shape[1] / original_size[0], rgb.shape[0] / original_size[1])
    result = render(rgb, geometry, color, finish)
    nails = [{"polygon": n["polygon"], "direction": n["direction"], "axis_source": n["axis_source"]}
             for n in result.nails]
    return TryOnResult(result.image, "labels", None, nails,
                       {"render": round((time.perf_counter() - started) * 1000, 1)})


def render_with_model(rgb: np.ndarray, version: ModelVersion | None, color: str, finish: str) -> TryOnResult:
    """Predict, post-process and paint; ``version`` None: the active model (NoActiveModel when none)."""
    version = version or ModelVersion.objects.active()
    if version is None:
        raise NoActiveModel("no active model: activate a trained model version (training) first, "
                            "or render a platform image with its labels")
    t0 = time.perf_counter()
    predictor = predictor_for(version)
    t1 = time.perf_counter()
    prediction = predictor(rgb)
    t2 = time.perf_counter()
    nails = postprocess(*prediction.arrays, image=rgb)
    t3 = time.perf_counter()
    result = render(rgb, nails, color, finish)
    t4 = time.perf_counter()
    timings = {"load_model": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2, "render": t4 - t3}
    return TryOnResult(result.image, "model", version.name, to_dicts(nails),
                       {k: round(v * 1000, 1) for k, v in timings.items()})


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def check_color(value) -> str:
    """A ``#RRGGBB`` colour (ValueError otherwise), normalised to upper case."""
    r, g, b = parse_color(str(value))
    return f"#{r:02X}{g:02X}{b:02X}"


def check_finish(value) -> str:
    value = str(value or "glossy")
    if value not in FINISHES:
        raise ValueError(f"finish must be one of {', '.join(FINISHES)}, got {value!r}")
    return value


def page_config(version: ModelVersion | None) -> dict:
    """What the try-on page needs to start: the model, how it runs, colours and finishes, and the
    post-processing settings that the in-browser path (tryon/static/tryon/postprocess.js) uses."""
    info = model_info(version)
    tfjs = info["tfjs"] if info else None
    if info is None:
        in_browser = {"available": False, "reason": (
            "In-browser inference comes with the model's TensorFlow.js export, once a model is active.")}
    elif tfjs is None:
        in_browser = {"available": False, "reason": (
            "In-browser inference comes with the model's TensorFlow.js export (this model has none yet: an admin "
            "makes one on the model's exports page): photos are rendered on the server.")}
    else:
        in_browser = {"available": True, "reason": (
            f"The model's TensorFlow.js export (artifact {tfjs['artifact']}) runs in this browser: photos and the "
            "webcam are segmented, post-processed and painted here, nothing is sent to the server.")}
    return {
        "active_model": info,
        "in_browser": in_browser,
        "finishes": list(FINISHES),
        "palette": [{"name": name, "color": color} for name, color in PALETTE],
        "max_side": MAX_SIDE,
        "postprocess": config_dict(),
    }
