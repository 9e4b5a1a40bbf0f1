"""What the model will learn, as pictures: the dataset rasterizer's output rendered as transparent PNGs
for the annotation and review pages, and the agreement (IoU) of two sets of labels.

The rasters come from ``dataset.raster.rasterize`` (never re-implemented here), at a reduced size: the
longest side is at most ``max_size`` pixels and the page stretches the PNG over the image.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from dataset.raster import PALETTE, UNKNOWN_CLASS, direction_field_colors, rasterize

KINDS = ("foreground", "classes", "field")
DEFAULT_MAX_SIZE = 1024
MIN_SIZE, MAX_SIZE = 64, 2048
NAIL_RGB = (255, 0, 190)     # foreground mask
IGNORE_RGBA = (40, 40, 40, 150)
NO_FIELD_RGBA = (128, 128, 128, 110)  # inside a nail that has no landmarks: no field loss there


def out_size(width: int, height: int, max_size: int = DEFAULT_MAX_SIZE) -> tuple[int, int]:
    """(w, h) with the longest side at most ``max_size`` (never enlarged), aspect kept."""
    scale = min(1.0, max_size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _arrows(draw: ImageDraw.ImageDraw, field: np.ndarray, mask: np.ndarray, step: int) -> None:
    """A short arrow every ``step`` pixels inside the field, drawn with a dark halo so it reads on any colour."""
    height, width = mask.shape
    half = step * 0.42
    for row in range(step // 2, height, step):
        for col in range(step // 2, width, step):
            if not mask[row, col]:
                continue
            dx, dy = (float(v) for v in field[row, col])
            cx, cy = col + 0.5, row + 0.5
            tail, head = (cx - dx * half, cy - dy * half), (cx + dx * half, cy + dy * half)
            wing = max(2.0, step * 0.22)
            angle = math.atan2(dy, dx)
            left = (head[0] - wing * math.cos(angle - 0.5), head[1] - wing * math.sin(angle - 0.5))
            right = (head[0] - wing * math.cos(angle + 0.5), head[1] - wing * math.sin(angle + 0.5))
            for colour, width_px in (((0, 0, 0, 200), 3), ((255, 255, 255, 255), 1)):
                draw.line([tail, head], fill=colour, width=width_px)
                draw.line([left, head, right], fill=colour, width=width_px)


def render_overlay(geometry: dict, width: int, height: int, kind: str, max_size: int = DEFAULT_MAX_SIZE):
    """``(png_bytes, info)`` for valid geometry. ``info``: raster size, overlapping nails, pixel counts."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    size = out_size(width, height, max(MIN_SIZE, min(MAX_SIZE, int(max_size))))
    rasters = rasterize(geometry, width, height, out_size=size)
    h, w = rasters.foreground.shape
    rgba = np.zeros((h, w, 4), np.uint8)
    ignore = rasters.ignore > 0
    nail = rasters.foreground > 0
    if kind == "foreground":
        rgba[nail] = (*NAIL_RGB, 150)
    elif kind == "classes":
        rgba[nail, :3] = PALETTE[rasters.classes[nail]]
        rgba[nail, 3] = 175
        unknown = rasters.classes == UNKNOWN_CLASS
        stripes = ((np.add.outer(np.arange(h), np.arange(w)) // 4) % 2 == 0)
        rgba[unknown & stripes] = (90, 90, 90, 200)  # hatched: a nail without a finger class
    else:
        with_field = rasters.field_mask > 0
        rgba[nail & ~with_field] = NO_FIELD_RGBA
        rgba[with_field, :3] = direction_field_colors(rasters.field, rasters.field_mask)[with_field]
        rgba[with_field, 3] = 170
    rgba[ignore & ~nail] = IGNORE_RGBA
    picture = PILImage.fromarray(rgba, "RGBA")
    if kind == "field" and rasters.field_mask.any():
        step = max(10, round(max(w, h) / 80))
        _arrows(ImageDraw.Draw(picture), rasters.field, rasters.field_mask, step)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", optimize=False, compress_level=3)
    info = {
        "width": w, "height": h, "kind": kind,
        "foreground_pixels": int(nail.sum()), "ignore_pixels": int(ignore.sum()),
        "overlaps": [list(o) for o in rasters.overlaps],
        "skipped": list(rasters.skipped),
    }
    return buffer.getvalue(), info


def compare(geometry_a: dict, geometry_b: dict, width: int, height: int, max_size: int = DEFAULT_MAX_SIZE) -> dict:
    """Agreement of two label sets on the rasterized masks: foreground IoU, finger-class agreement on
    the pixels both call nail, and each nail of A matched to the nail of B it overlaps most (by IoU)."""
    size = out_size(width, height, max_size)
    a = rasterize(geometry_a, width, height, out_size=size)
    b = rasterize(geometry_b, width, height, out_size=size)
    fa, fb = a.foreground > 0, b.foreground > 0
    union = int((fa | fb).sum())
    both = fa & fb
    foreground_iou = 1.0 if union == 0 else int(both.sum()) / union
    known = both & (a.classes != UNKNOWN_CLASS) & (b.classes != UNKNOWN_CLASS)
    class_agreement = None if not known.any() else float((a.classes[known] == b.classes[known]).mean())
    na, nb = int(a.instance.max()), int(b.instance.max())
    joint = np.bincount((a.instance.astype(np.int64) * (nb + 1) + b.instance).ravel(), minlength=(na + 1) * (nb + 1))
    joint = joint.reshape(na + 1, nb + 1)
    area_a, area_b = joint.sum(1), joint.sum(0)
    matches, used = [], set()
    pairs = sorted(((joint[i, j] / (area_a[i] + area_b[j] - joint[i, j]), i, j)
                    for i in range(1, na + 1) for j in range(1, nb + 1) if joint[i, j]), reverse=True)
    for iou, i, j in pairs:
        if i in {m[0] for m in matches} or j in used:
            continue
        matches.append((i, j, iou))
        used.add(j)
    return {
        "foreground_iou": round(foreground_iou, 4),
        "class_agreement": None if class_agreement is None else round(class_agreement, 4),
        "matches": [{"a": i - 1, "b": j - 1, "iou": round(float(iou), 4)} for i, j, iou in sorted(matches)],
        "raster_size": list(size),
    }
