"""Training rasters of one image's nails: masks, finger classes, direction field.

Plain NumPy; this module must never import Django (nor needs OpenCV).

Input is the geometry dict of ``dataset.geometry`` (image pixel coordinates of
an image of ``width`` x ``height``). ``rasterize`` can render at any output
size: it scales the *geometry* by ``(out_w / width, out_h / height)`` and
rasterizes at the target size; rasters are never resized.

Pixel convention
    Pixel ``(col, row)`` covers ``[col, col + 1) x [row, row + 1)``; it belongs
    to a polygon when its CENTRE ``(col + 0.5, row + 0.5)`` is inside the
    polygon (even-odd rule, identical to the usual inside test for the simple
    polygons that validation admits). A centre lying exactly on an edge follows
    the top-left rule: inside on left and top edges, outside on right and
    bottom edges, so two polygons sharing an edge neither overlap nor leave a
    gap, and a rectangle with integer corners covers exactly its pixels.
    The fill is an exact scanline over pixel centres computed in float64 (no
    fixed-point rounding). ``cv2.fillPoly`` is NOT used: even with sub-pixel
    ``shift`` and the half-pixel offset it also draws the polygon outline, which
    adds ~4-12 % pixels up to ~1 px outside small polygons (measured on
    OpenCV 5.0), too much for nails that are a few hundred pixels big.

Rasters (H x W = output size)
    foreground  uint8 {0, 1}   pixel inside some nail.
    classes     uint8          0 background, 1..10 finger class (1-5 left thumb..little,
                               6-10 right), ``UNKNOWN_CLASS`` = 255 for a nail without a
                               (valid) finger class: class losses must ignore 255.
    field       float32 HxWx2  unit vector from the nail's base to its tip in OUTPUT
                               pixel coordinates (x right, y down; with anisotropic
                               scaling the direction is that of the scaled landmarks);
                               (0, 0) outside nails and inside nails without landmarks.
    field_mask  uint8 {0, 1}   pixel carries a field (inside a nail with landmarks).
    ignore      uint8 {0, 1}   inside an ignore polygon (losses skip these pixels; nail
                               labels underneath are kept, the loss code masks them).
    instance    int32          index of the owning nail + 1 (0 background).
    overlaps    [(i, j, pixels)] nail index pairs i < j whose polygons share pixels,
                               counted before the overlap rule is applied.
    skipped     [i]            nails whose polygon is unusable (not a list of >= 3 finite
                               points); they get no pixels. Callers validate first.

Overlap rule
    A pixel inside several nails belongs to the one with the SMALLEST polygon
    area (in image pixels, rounded to 0.001 px^2, so the winner is the same at
    every output size; equal areas: the later nail in the list). Nails are small
    and a small nail drawn over a larger one is nearly always the intended one
    (e.g. a thumb nail in front of another finger). ``overlaps`` reports every
    overlapping pair so that validation / review can flag them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field as dataclass_field

import numpy as np

from dataset.geometry import confirmed_labels

UNKNOWN_CLASS = 255
BACKGROUND_CLASS = 0
MAX_COORD = 1e9  # polygons with larger |coordinates| are treated as unusable

# Class palette for overlays (RGB): left hand warm, right hand cool, unknown grey.
PALETTE = np.zeros((256, 3), np.uint8)
PALETTE[1:11] = [
    (230, 25, 75), (245, 130, 48), (255, 225, 25), (240, 50, 230), (170, 110, 40),  # left 1-5
    (0, 130, 200), (70, 240, 240), (60, 180, 75), (145, 30, 180), (0, 0, 128),     # right 6-10
]
PALETTE[UNKNOWN_CLASS] = (200, 200, 200)


@dataclass
class Rasters:
    foreground: np.ndarray
    classes: np.ndarray
    field: np.ndarray
    field_mask: np.ndarray
    ignore: np.ndarray
    instance: np.ndarray
    overlaps: list[tuple[int, int, int]] = dataclass_field(default_factory=list)
    skipped: list[int] = dataclass_field(default_factory=list)


def _polygon(raw) -> np.ndarray | None:
    """``raw`` as a float64 (n >= 3, 2) array, or None if unusable."""
    try:
        pts = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    ok = pts.ndim == 2 and pts.shape[0] >= 3 and pts.shape[1] == 2
    return pts if ok and np.abs(pts).max() <= MAX_COORD else None  # NaN fails the test too


def _landmark(raw) -> tuple[float, float] | None:
    if not isinstance(raw, (list, tuple)):
        return None
    try:
        x, y = (float(v) for v in raw)
    except (TypeError, ValueError, OverflowError):
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None


def _fill(polygons: list[np.ndarray], scale: np.ndarray, width: int, height: int):
    """Pixels inside each polygon scaled by ``scale``: flat indices ``row * width + col`` and the
    polygon of each pixel (non-decreasing).

    Exact scanline at pixel centres for all polygons at once: each edge crossing row
    ``r`` (its centre ``y = r + 0.5`` in ``[min y, max y)`` of the edge, so a closed ring
    crosses every row an even number of times) at ``x`` gives ``col = ceil(x - 0.5)``,
    the first pixel whose centre is at or right of ``x``. Sorted along the row, the
    crossings pair up into runs ``[col_a, col_b)`` of inside pixels (even-odd rule).
    """
    if not polygons:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lengths = np.array([len(p) for p in polygons])
    ends = np.cumsum(lengths)
    following = np.arange(1, ends[-1] + 1)
    following[ends - 1] = ends - lengths  # closing edges
    p0 = np.concatenate(polygons) * scale
    x0, y0 = p0[:, 0], p0[:, 1]
    x1, y1 = x0[following], y0[following]
    first = np.clip(np.ceil(np.minimum(y0, y1) - 0.5), 0, height).astype(np.int64)
    counts = np.clip(np.ceil(np.maximum(y0, y1) - 0.5), 0, height).astype(np.int64) - first
    edge = np.repeat(np.arange(len(p0)), counts)
    rows = np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts, counts) + first[edge]
    xs = x0[edge] + (rows + 0.5 - y0[edge]) * ((x1 - x0)[edge] / (y1 - y0)[edge])
    cols = np.clip(np.ceil(xs - 0.5), 0, width).astype(np.int64)
    owner = np.repeat(np.arange(len(polygons)), lengths)[edge]
    key = np.sort((owner * height + rows) * (width + 1) + cols)  # by polygon, row, col
    group, cols = np.divmod(key, width + 1)
    start, stop = cols[0::2], cols[1::2]
    n = stop - start
    offset = group[0::2] % height * width + start - (np.cumsum(n) - n)
    return np.arange(int(n.sum())) + np.repeat(offset, n), np.repeat(group[0::2] // height, n)


def _area(p: np.ndarray) -> float:
    """Absolute shoelace area, rounded to 0.001 px^2 so that equal shapes (e.g. translated) tie."""
    x, y = (p - p[0]).T
    return round(abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2, 3)


def _overlaps(pix: np.ndarray, owner: np.ndarray, size: int) -> list[tuple[int, int, int]]:
    """Pixels shared by each pair of polygons: (i, j, count), i < j."""
    coverage = np.bincount(pix, minlength=size)
    shared = coverage[pix] > 1
    m = int(owner.max()) + 1
    p, k = np.divmod(np.sort(pix[shared] * m + owner[shared]), m)  # grouped by pixel, owners ascending
    pairs = np.concatenate([np.stack([k[:-d], k[d:]], 1)[p[:-d] == p[d:]]  # owners d apart on one pixel
                            for d in range(1, coverage.max())])
    found, counts = np.unique(pairs, axis=0, return_counts=True)
    return [(int(i), int(j), int(c)) for (i, j), c in zip(found, counts)]


def _size(value, name: str) -> tuple[int, int]:
    try:
        w, h = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two positive integers, got {value!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in (w, h)):
        raise ValueError(f"{name} must be two positive integers, got {value!r}")
    return int(w), int(h)


def _scaled_point(p, sx, sy):
    return None if p is None else [p[0] * sx, p[1] * sy]


def scale_geometry(geometry: dict, sx: float, sy: float) -> dict:
    """Copy of (valid) geometry with x multiplied by ``sx`` and y by ``sy``; other keys kept."""
    nails = []
    for nail in geometry.get("nails") or []:
        out = dict(nail)
        out["polygon"] = [[x * sx, y * sy] for x, y in nail["polygon"]]
        out["base"] = _scaled_point(nail.get("base"), sx, sy)
        out["tip"] = _scaled_point(nail.get("tip"), sx, sy)
        nails.append(out)
    result = dict(geometry, nails=nails)
    result["ignore"] = [[[x * sx, y * sy] for x, y in ring] for ring in geometry.get("ignore") or []]
    return result


def rasterize(geometry: dict, width: int, height: int, out_size: tuple[int, int] | None = None, *,
              use_suggested: bool = False) -> Rasters:
    """All training rasters of one image at ``out_size = (out_w, out_h)`` (default: image size).

    Fingers and landmarks marked ``suggested`` (``dataset.geometry``) count as missing (unknown class, no
    direction) unless ``use_suggested``: training learns only from confirmed labels by default."""
    width, height = _size((width, height), "image size")
    out_w, out_h = _size(out_size or (width, height), "out_size")
    sx, sy = out_w / width, out_h / height
    scale = np.array([sx, sy])
    geometry = geometry if isinstance(geometry, dict) else {}
    nails = geometry.get("nails") if isinstance(geometry.get("nails"), list) else []

    polygons, index, classes_of, vectors, skipped = [], [], [UNKNOWN_CLASS], [(0.0, 0.0)], []
    for i, nail in enumerate(nails):
        nail = nail if isinstance(nail, dict) else {}
        pts = _polygon(nail.get("polygon"))
        if pts is None:
            skipped.append(i)
            continue
        polygons.append(pts)
        index.append(i)
        labels = nail if use_suggested else confirmed_labels(nail)
        finger = labels.get("finger")
        classes_of.append(finger if type(finger) is int and 1 <= finger <= 10 else UNKNOWN_CLASS)
        base, tip = _landmark(labels.get("base")), _landmark(labels.get("tip"))
        dx, dy = ((tip[0] - base[0]) * sx, (tip[1] - base[1]) * sy) if base and tip else (0.0, 0.0)
        norm = math.hypot(dx, dy)
        vectors.append((dx / norm, dy / norm) if norm > 1e-9 else (0.0, 0.0))

    regions = geometry.get("ignore") if isinstance(geometry.get("ignore"), list) else []
    regions = [p for p in map(_polygon, regions) if p is not None]
    pix, owner = _fill(polygons + regions, scale, out_w, out_h)  # owner: position in that list
    split = int(np.searchsorted(owner, len(polygons)))
    ignore = np.zeros((out_h, out_w), np.uint8)
    ignore.reshape(-1)[pix[split:]] = 1
    pix, owner = pix[:split], owner[:split]
    label = owner + 1  # the lookup tables below have a dummy entry 0 for "no nail"
    instance_of = np.array([0] + [i + 1 for i in index], np.int32)
    instance = np.zeros((out_h, out_w), np.int32)
    instance.reshape(-1)[pix] = instance_of[label]
    overlaps = []
    if not np.array_equal(instance.reshape(-1)[pix], instance_of[label]):  # a pixel written twice
        # Overlap rule: the smallest area wins (equal areas: the later nail). rank = painting order.
        rank = np.empty(len(polygons), np.int64)
        areas = [_area(p) for p in polygons]  # in image pixels: the same order at any out_size
        rank[np.lexsort((np.arange(len(polygons)), -np.array(areas)))] = np.arange(len(polygons))
        best = np.full(out_h * out_w, -1, np.int64)
        np.maximum.at(best, pix, rank[owner])
        winner = best[pix] == rank[owner]
        overlaps = [(index[i], index[j], c) for i, j, c in _overlaps(pix, owner, out_h * out_w)]
        pix, label = pix[winner], label[winner]
        instance.reshape(-1)[pix] = instance_of[label]
    foreground = np.zeros((out_h, out_w), np.uint8)
    foreground.reshape(-1)[pix] = 1
    classes = np.zeros((out_h, out_w), np.uint8)
    classes.reshape(-1)[pix] = np.array(classes_of, np.uint8)[label]
    vectors = np.array(vectors, np.float32)
    field = np.zeros((out_h, out_w, 2), np.float32)
    field.view(np.complex64).reshape(-1)[pix] = vectors.view(np.complex64)[label, 0]  # (x, y) pairs
    field_mask = np.zeros((out_h, out_w), np.uint8)
    field_mask.reshape(-1)[pix] = ((vectors[:, 0] != 0) | (vectors[:, 1] != 0))[label]  # unit or (0, 0)

    return Rasters(foreground, classes, field, field_mask, ignore, instance, overlaps, skipped)


def direction_field_colors(field: np.ndarray, field_mask: np.ndarray) -> np.ndarray:
    """HSV colour wheel of the field as uint8 H x W x 3 RGB: hue = angle, black where no field.

    Angle is measured in image coordinates (y down): red = pointing right, then
    clockwise on screen: yellow-green = down, cyan = left, blue-violet = up.
    """
    hue = (np.degrees(np.arctan2(field[..., 1], field[..., 0])) % 360.0) / 60.0  # 0..6
    k = (np.array([5.0, 3.0, 1.0]) + hue[..., None]) % 6.0                        # HSV -> RGB, S = V = 1
    rgb = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (rgb * 255.0 * (np.asarray(field_mask) > 0)[..., None] + 0.5).astype(np.uint8)


def overlay(image_rgb: np.ndarray, rasters: Rasters, alpha: float = 0.5) -> np.ndarray:
    """Image with nails tinted by finger class (``PALETTE``) and ignore regions darkened."""
    image = np.asarray(image_rgb)
    if image.dtype != np.uint8 or image.shape != rasters.classes.shape + (3,):
        raise ValueError(f"expected a uint8 {rasters.classes.shape[1]}x{rasters.classes.shape[0]} "
                         f"RGB image, got {image.dtype} {image.shape}")
    out = image.astype(np.float32)
    out[rasters.ignore > 0] *= 0.5
    nail = rasters.foreground > 0
    out[nail] = (1 - alpha) * out[nail] + alpha * PALETTE[rasters.classes[nail]]
    return (out + 0.5).astype(np.uint8)
