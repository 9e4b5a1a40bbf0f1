"""Model predictions -> one instance per nail (Duke et al., CVPRW 2019, "Post-processing and rendering").

Plain NumPy + OpenCV + Shapely; never imports Django (nor torch).

    from ml.postprocess import postprocess, to_geometry
    nails = postprocess(fg_prob, class_prob, field)     # H x W, H x W x 10 (or None), H x W x 2 (or None)
    geometry = to_geometry(nails)                       # {"nails": [...], "ignore": []}: dataset.geometry format

Inputs (all at the image's own resolution, e.g. :func:`ml.predict.predict`'s output):

* ``fg_prob``  float H x W, the nail probability (softmax of the fg/bg logits). :func:`from_logits` turns raw
  model outputs (2 x H x W, 10 x H x W, 2 x H x W) into these arrays.
* ``class_prob`` float H x W x 10 finger-class probabilities (channel k-1 = class k), or an integer H x W
  class map (0 background, 1..10), or None for a binary-only model (no class head trained).
* ``field`` float H x W x 2 direction field (x right, y down), or None when the field head was not trained.

Steps (our reading of the paper's one paragraph; details in ``docs/rendering.md``):

1. ``fg = fg_prob > threshold``; connected components of it with OpenCV's block-based decision-tree
   labeling (Grana et al.: ``cv2.CCL_GRANA``, or ``CCL_BBDT``), 8-connectivity. Fragments under a quarter
   of ``min_area`` are noise and dropped at once.
2. With classes, the components are the components of the *class prediction*: a component whose pixels
   hold a second finger class with at least ``split_fraction`` of the (fg-weighted) votes is split into the
   connected components of each such class (the same Grana labeling); its remaining pixels (class noise)
   go to the nearest part. Touching nails of different fingers become two instances; a nail whose class
   flickers stays one.
3. Per blob: finger = majority vote of the class argmax weighted by the fg probability; direction = the
   average of the predicted field vectors weighted by the fg probability, normalised; angle =
   ``atan2(uy, ux)`` in degrees (image coordinates: 0 = pointing right, 90 = pointing down). Without a
   field: the blob's principal axis (sign unknown: pointing up in the image, or decided from the photo
   with :func:`orient_from_image` when ``image`` is given).
4. Merge: two blobs of the same finger (or both without one) whose directions agree within
   ``merge_angle`` degrees, whose gap is at most ``merge_gap`` x sqrt(area of the smaller) pixels (at least
   ``merge_gap_min_px``), and which lie one after the other along that direction (the offset between their
   centroids within ``merge_axis_angle`` degrees of it): a nail split across (by a highlight or a wrong
   band) becomes one again. Then blobs under ``min_area`` pixels are dropped.
5. Per nail: polygon = the outer contour of the blob (pixel outlines, not pixel centres: the contour through
   boundary pixel centres grown by half a pixel) simplified by Douglas-Peucker to ``polygon_tolerance`` px,
   the tolerance raised until at most ``max_vertices`` vertices remain; base and tip = where the nail's
   axis (through its fg-weighted centroid, along the direction) leaves the polygon: the blob's extremes
   along the direction; confidence = mean fg probability over the blob.

The output :class:`Nail` s convert to the platform's geometry format (``to_geometry``; passes
``dataset.geometry.validate_geometry``) for pre-labeling, and feed :mod:`ml.render` directly.

Why this file is over 600 lines: it is one pipeline, steps 1-5 above, whose private helpers (blob
geometry, orientation, splitting, merging) serve :func:`postprocess` alone; :func:`orient_from_image`,
:func:`nail_axis` and :class:`Nail` are read from here by the renderer and the apps.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

__all__ = [
    "Nail",
    "angle_between",
    "axis_ends",
    "PostprocessConfig",
    "from_logits",
    "nail_axis",
    "orient_from_image",
    "postprocess",
    "to_dicts",
    "to_geometry",
]

ALGORITHMS = {"grana": cv2.CCL_GRANA, "bbdt": cv2.CCL_BBDT}
NUM_FINGERS = 10


@dataclass(frozen=True)
class PostprocessConfig:
    """Settings of :func:`postprocess` (pixels are full-resolution image pixels)."""

    threshold: float = 0.5          # fg probability above which a pixel is nail
    min_area: int = 40              # smallest nail kept, px (also min_area_fraction of the image)
    min_area_fraction: float = 2e-5
    split_fraction: float = 0.2     # a second class with this share of a blob's votes splits the blob
    merge: bool = True
    merge_angle: float = 25.0       # degrees between the two directions
    merge_axis_angle: float = 40.0  # degrees between the direction and the centroid offset
    merge_gap: float = 0.3          # x sqrt(area of the smaller blob)
    merge_gap_min_px: float = 3.0
    polygon_tolerance: float = 1.0  # Douglas-Peucker, px
    max_vertices: int = 64
    connectivity: int = 8
    algorithm: str = "grana"        # or "bbdt"

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        if self.connectivity not in (4, 8):
            raise ValueError("connectivity must be 4 or 8")
        if self.max_vertices < 3:
            raise ValueError("max_vertices must be at least 3")


@dataclass
class Nail:
    """One nail instance. ``mask`` is the blob's bool mask cropped to ``bbox = (x, y, w, h)`` (image px).

    ``direction`` is the unit vector base -> tip (x right, y down) and ``angle`` its angle in degrees;
    ``direction_source`` says where it came from: "field" (the predicted direction field), "image" (the
    principal axis oriented from the photo) or "shape" (the principal axis, sign arbitrary: pointing up).
    ``extra`` carries how sure the direction is: ``field_coherence`` (a "field" direction: how much the
    predicted field agrees over the nail, 1 = every pixel points the same way) or ``orientation_confidence``
    (an "image" direction, see :func:`orient_from_image`). ``base`` / ``tip`` are the blob's extremes along
    the direction (always set; only field-based ones are written as landmarks by :func:`to_geometry` unless
    asked). ``polygon``: list of [x, y] in image px.
    """

    finger: int | None
    bbox: tuple[int, int, int, int]
    mask: np.ndarray
    area: int
    direction: tuple[float, float]
    angle: float
    direction_source: str
    base: tuple[float, float]
    tip: tuple[float, float]
    polygon: list[list[float]]
    confidence: float
    class_confidence: float | None = None
    merged_from: int = 1
    extra: dict = field(default_factory=dict)

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The bool mask at image size ``(H, W)``."""
        out = np.zeros(shape[:2], bool)
        x, y, w, h = self.bbox
        out[y:y + h, x:x + w] = self.mask
        return out

    @property
    def has_direction(self) -> bool:
        return self.direction_source == "field"

    def to_geometry(self, landmarks: str = "field") -> dict:
        """This nail as a ``dataset.geometry`` nail dict. ``landmarks``: "field" (base/tip only when the
        direction came from the predicted field), "always" or "never"."""
        keep = landmarks == "always" or (landmarks == "field" and self.direction_source == "field")
        return {"polygon": [list(p) for p in self.polygon], "finger": self.finger,
                "base": [round(self.base[0], 2), round(self.base[1], 2)] if keep else None,
                "tip": [round(self.tip[0], 2), round(self.tip[1], 2)] if keep else None}

    def to_dict(self) -> dict:
        """JSON-ready summary: the geometry nail plus confidence, angle, area and provenance."""
        return {**self.to_geometry("always"), "confidence": round(self.confidence, 4),
                "class_confidence": None if self.class_confidence is None else round(self.class_confidence, 4),
                "angle": round(self.angle, 2), "direction": [round(v, 5) for v in self.direction],
                "direction_source": self.direction_source, "area": self.area, "bbox": list(self.bbox),
                "merged_from": self.merged_from}


# ----------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------


def _softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def from_logits(fg_logits: np.ndarray, cls_logits: np.ndarray | None = None, field: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Raw outputs of one image (channels first: 2 x H x W, 10 x H x W, 2 x H x W; a leading batch of 1 is
    accepted) -> ``(fg_prob H x W, class_prob H x W x 10 or None, field H x W x 2 or None)``."""
    fg_logits = np.asarray(fg_logits, np.float32)
    if fg_logits.ndim == 4:
        fg_logits = fg_logits[0]
    fg_prob = 1.0 / (1.0 + np.exp(fg_logits[0] - fg_logits[1]))  # softmax of two logits
    class_prob = None
    if cls_logits is not None:
        cls_logits = np.asarray(cls_logits, np.float32)
        cls_logits = cls_logits[0] if cls_logits.ndim == 4 else cls_logits
        class_prob = np.moveaxis(_softmax(cls_logits, 0), 0, -1)
    if field is not None:
        field = np.asarray(field, np.float32)
        field = field[0] if field.ndim == 4 else field
        field = np.moveaxis(field, 0, -1)
    return fg_prob.astype(np.float32), class_prob, field


def _class_map(class_prob: np.ndarray | None, shape, where: np.ndarray) -> np.ndarray | None:
    """Finger class map (uint8, 0 outside ``where``) from probabilities (argmax + 1) or a class map."""
    if class_prob is None:
        return None
    class_prob = np.asarray(class_prob)
    if class_prob.ndim == 2:
        if class_prob.shape != shape:
            raise ValueError(f"class map {class_prob.shape} does not match fg_prob {shape}")
        return np.where(where, class_prob, 0).astype(np.uint8)
    if class_prob.shape[:2] != shape or class_prob.shape[2] != NUM_FINGERS:
        raise ValueError(f"class_prob must be H x W x {NUM_FINGERS} matching fg_prob {shape}, got {class_prob.shape}")
    out = np.zeros(shape, np.uint8)
    out[where] = class_prob[where].argmax(axis=1) + 1  # only where there is nail: a fraction of the frame
    return out


# ----------------------------------------------------------------------------------------------------
# Geometry of one blob
# ----------------------------------------------------------------------------------------------------


def _principal_axis(mask: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weighted centroid (x, y) in crop px, unit major axis pointing up in the image)."""
    ys, xs = np.nonzero(mask)
    w = weights[ys, xs].astype(np.float64) + 1e-6
    cx, cy = np.average(xs, weights=w) + 0.5, np.average(ys, weights=w) + 0.5
    dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
    cov = np.array([[np.average(dx * dx, weights=w), np.average(dx * dy, weights=w)],
                    [np.average(dx * dy, weights=w), np.average(dy * dy, weights=w)]])
    vals, vecs = np.linalg.eigh(cov)
    axis = vecs[:, int(np.argmax(vals))]
    if axis[1] > 0 or (axis[1] == 0 and axis[0] < 0):
        axis = -axis
    return np.array([cx, cy]), axis / np.linalg.norm(axis)


def nail_axis(polygon) -> tuple[np.ndarray, np.ndarray]:
    """(area centroid, unit principal axis pointing up in the image) of a polygon (image px)."""
    pts = np.asarray(polygon, np.float64)
    poly = Polygon(pts)
    c = np.array(poly.centroid.coords[0])
    m = cv2.moments((pts - c).astype(np.float32))
    mu20, mu02, mu11 = m["mu20"], m["mu02"], m["mu11"]
    theta = 0.5 * math.atan2(2 * mu11, mu20 - mu02)
    axis = np.array([math.cos(theta), math.sin(theta)])
    if axis[1] > 0 or (axis[1] == 0 and axis[0] < 0):
        axis = -axis
    return c, axis


def _polygon_of(mask: np.ndarray, offset: tuple[int, int], size: tuple[int, int], tolerance: float,
                max_vertices: int) -> Polygon | None:
    """Outer contour of the largest component of ``mask`` as a simple shapely Polygon in image px
    (pixel outlines: the contour through boundary pixel centres grown by half a pixel), simplified."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    contour = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    pts = contour[:, 0, :].astype(np.float64) + 0.5 + np.asarray(offset, np.float64)
    if len(pts) == 1:
        poly = shapely.Point(pts[0]).buffer(0.5, cap_style="square")
    elif len(pts) == 2:
        poly = LineString(pts).buffer(0.5, cap_style="square", join_style="mitre")
    else:
        poly = Polygon(pts)
        poly = poly.buffer(0.5, join_style="mitre", mitre_limit=2.0) if poly.is_valid else \
            poly.buffer(0).buffer(0.5, join_style="mitre", mitre_limit=2.0)
    if poly.geom_type == "MultiPolygon":
        poly = max(poly.geoms, key=lambda g: g.area)
    poly = Polygon(poly.exterior)  # holes are not part of the geometry format
    width, height = size
    poly = poly.intersection(shapely.box(0, 0, width, height))
    if poly.geom_type != "Polygon":
        parts = [g for g in getattr(poly, "geoms", []) if g.geom_type == "Polygon"]
        if not parts:
            return None
        poly = max(parts, key=lambda g: g.area)
    tol = tolerance
    for _ in range(40):
        simple = poly.simplify(tol, preserve_topology=True)
        simple = Polygon(np.round(np.asarray(simple.exterior.coords), 2))
        if (simple.is_valid and simple.area > 0 and len(simple.exterior.coords) - 1 <= max_vertices
                and LineString(simple.exterior.coords).is_simple):
            return simple
        tol *= 1.5
    hull = poly.convex_hull.simplify(tol)
    return Polygon(np.round(np.asarray(hull.exterior.coords), 2))


def axis_ends(polygon, centre, u) -> tuple[np.ndarray, np.ndarray]:
    """(base, tip): where the line through ``centre`` along ``u`` leaves the polygon (a shapely Polygon or
    [x, y] points); its extreme vertices along ``u`` when the line misses it (a crescent)."""
    vertices = np.asarray(polygon.exterior.coords if isinstance(polygon, Polygon) else polygon, np.float64)
    poly = polygon if isinstance(polygon, Polygon) else Polygon(vertices)
    if not poly.is_valid:
        poly = poly.buffer(0)
    centre, u = np.asarray(centre, np.float64), np.asarray(u, np.float64)
    minx, miny, maxx, maxy = poly.bounds
    reach = 2.0 * math.hypot(maxx - minx, maxy - miny) + 10.0
    hit = LineString([centre - u * reach, centre + u * reach]).intersection(poly)
    coords = []
    for geom in getattr(hit, "geoms", [hit]):
        if not geom.is_empty and hasattr(geom, "coords"):
            coords.extend(geom.coords)
    pts = np.asarray(coords, np.float64) if len(coords) >= 2 else vertices
    t = (pts - centre) @ u
    return pts[int(np.argmin(t))], pts[int(np.argmax(t))]


# ----------------------------------------------------------------------------------------------------
# Orientation from the photo (no direction field)
# ----------------------------------------------------------------------------------------------------


def orient_from_image(image: np.ndarray, mask: np.ndarray, offset: tuple[int, int], centre: np.ndarray,
                      axis: np.ndarray, others: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Which way along ``axis`` the tip lies, from the photo: ``(u, confidence)``.

    The finger goes on for several nail lengths beyond the base (the cuticle end) but ends soon after the
    tip. The finger's skin is sampled beside the middle of the nail (the nail folds); the strip from 0.5
    to 1.5 nail lengths beyond each end is compared with it (median CIE Lab distance, lightness at half
    weight); the tip is at the end whose strip looks less like that skin. A strip that falls outside the
    photo marks the base (the finger comes in from the border). ``confidence`` in [0, 1] (0: no idea,
    ``axis`` is returned unchanged). ``mask`` is the nail's bool mask cropped at ``offset = (x, y)``;
    ``others``: optional bool mask (image size) of every nail, excluded from the samples.
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    axis = np.asarray(axis, np.float64)
    axis = axis / np.linalg.norm(axis)
    perp = np.array([-axis[1], axis[0]])
    ys, xs = np.nonzero(mask)
    if len(xs) < 6:
        return axis, 0.0
    px = xs + 0.5 + offset[0] - centre[0]
    py = ys + 0.5 + offset[1] - centre[1]
    t, s = px * axis[0] + py * axis[1], px * perp[0] + py * perp[1]
    t_lo, t_hi = float(t.min()), float(t.max())
    length = max(t_hi - t_lo, 2.0)
    s_lo, s_hi = float(s.min()), float(s.max())
    half_width = max((s_hi - s_lo) / 2, 1.0)
    s_mid = (s_lo + s_hi) / 2

    reach = 2.0 * length + 2 * half_width + 4
    x0, x1 = int(max(0, centre[0] - reach)), int(min(width, centre[0] + reach + 1))
    y0, y1 = int(max(0, centre[1] - reach)), int(min(height, centre[1] + reach + 1))
    if x1 - x0 < 3 or y1 - y0 < 3:
        return axis, 0.0
    patch = np.ascontiguousarray(image[y0:y1, x0:x1, :3]).astype(np.float32) / 255.0
    lab = cv2.cvtColor(patch, cv2.COLOR_RGB2Lab) * np.array([0.5, 1.0, 1.0], np.float32)
    gy, gx = np.mgrid[y0:y1, x0:x1]
    qx, qy = gx + 0.5 - centre[0], gy + 0.5 - centre[1]
    qt, qs = qx * axis[0] + qy * axis[1], qx * perp[0] + qy * perp[1] - s_mid
    usable = np.ones(qt.shape, bool)
    if others is not None:
        usable &= ~np.asarray(others, bool)[y0:y1, x0:x1]
    mid = (t_lo + t_hi) / 2
    side = (usable & (np.abs(qt - mid) <= 0.3 * length) & (np.abs(qs) >= 1.15 * half_width + 1)
            & (np.abs(qs) <= 1.7 * half_width + 2))
    if side.sum() < 6:
        return axis, 0.0
    skin = np.median(lab[side], axis=0)
    # Profiles beyond each end along the axis: distance to the skin colour and the lightness edge across
    # the axis (the outline where the finger ends), medians over a band around the centre line.
    light = cv2.GaussianBlur(lab[..., 0], (0, 0), max(0.8, half_width * 0.08))
    grad = np.abs(cv2.Sobel(light, cv2.CV_32F, 1, 0, ksize=3) * axis[0]
                  + cv2.Sobel(light, cv2.CV_32F, 0, 1, ksize=3) * axis[1]) / 8.0 * 2.0
    step = max(1.0, length / 40)
    d = np.arange(0.0, 1.3 * length + step, step)
    offsets = np.linspace(-0.5, 0.5, 5) * half_width
    scores, inside = [], []
    for sign, end in ((1, t_hi), (-1, t_lo)):
        along = centre + np.outer(end + sign * d, axis) + perp * s_mid              # k x 2
        pts = along[:, None, :] + offsets[None, :, None] * perp[None, None, :]    # k x j x 2
        mx = (pts[..., 0] - x0 - 0.5).astype(np.float32)
        my = (pts[..., 1] - y0 - 0.5).astype(np.float32)
        valid = (mx >= 0) & (mx <= x1 - x0 - 1) & (my >= 0) & (my <= y1 - y0 - 1)
        keep = valid.all(axis=1)
        inside.append(float(keep.mean()))
        if keep.sum() < 4:
            scores.append(None)
            continue
        col = cv2.remap(lab, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        edge = cv2.remap(grad, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        dist = np.median(np.linalg.norm(col - skin, axis=2), axis=1)
        edge = np.median(edge, axis=1)
        # d = k * length / 40 lands on these bounds exactly; the margin keeps the last-bit rounding of
        # k * step from deciding (the JavaScript port gives the same windows).
        eps = 1e-9 * length
        far = keep & (d >= 0.25 * length - eps)
        near = keep & (d >= 0.05 * length - eps) & (d <= 0.8 * length + eps)
        colour = float(dist[far].mean()) if far.any() else float(dist[keep].mean())
        outline = float(edge[near].max()) if near.any() else 0.0
        scores.append(colour + 1.5 * outline)  # high: the finger stops here (tip)
    (s_ahead, s_behind), (in_ahead, in_behind) = scores, inside
    if s_ahead is not None and s_behind is not None and min(in_ahead, in_behind) > 0.5:
        confidence = abs(s_ahead - s_behind) / (s_ahead + s_behind + 4.0)
        u = axis if s_ahead > s_behind else -axis
    elif abs(in_ahead - in_behind) >= 0.4:
        confidence = 0.2
        u = axis if in_ahead > in_behind else -axis  # the base runs off the photo
    else:
        return axis, 0.0
    return u, float(confidence)


# ----------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Blob:
    x: int
    y: int
    mask: np.ndarray  # bool crop
    finger: int | None = None
    votes: np.ndarray | None = None
    u: np.ndarray | None = None
    source: str = "shape"
    coherence: float | None = None  # "field" direction: |weighted mean field| / weighted mean |field|, in [0, 1]
    centre: np.ndarray | None = None
    merged_from: int = 1

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def _components(binary: np.ndarray, config: PostprocessConfig):
    return cv2.connectedComponentsWithStatsWithAlgorithm(
        binary.astype(np.uint8), config.connectivity, cv2.CV_32S, ALGORITHMS[config.algorithm])


def _split_by_class(comp: np.ndarray, cls: np.ndarray, votes: np.ndarray, config: PostprocessConfig,
                    min_part: int) -> list[np.ndarray]:
    """Split one fg component into the components of its major classes; other pixels -> nearest part."""
    total = votes[1:].sum()
    major = [k for k in range(1, NUM_FINGERS + 1) if total > 0 and votes[k] / total >= config.split_fraction]
    if len(major) < 2:
        return [comp]
    seeds = np.zeros(comp.shape, np.int32)
    n_parts = 0
    for k in major:
        n, labels, stats, _ = _components(comp & (cls == k), config)
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] >= min_part:
                n_parts += 1
                seeds[labels == i] = n_parts
    if n_parts < 2:
        return [comp]
    # Nearest seed for every remaining pixel of the component.
    _, nearest = cv2.distanceTransformWithLabels((seeds == 0).astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros(nearest.max() + 1, np.int32)
    lut[nearest[seeds > 0]] = seeds[seeds > 0]
    owner = np.where(seeds > 0, seeds, lut[nearest])
    return [comp & (owner == i) for i in range(1, n_parts + 1)]


def _direction(blob: _Blob, prob: np.ndarray, field: np.ndarray | None) -> None:
    """Weighted centroid and direction of a blob (crops of ``prob``/``field`` at the blob's bbox)."""
    centre, axis = _principal_axis(blob.mask, prob)
    blob.centre = centre + (blob.x, blob.y)
    blob.u, blob.source, blob.coherence = axis, "shape", None
    if field is not None:
        w = prob[blob.mask].astype(np.float64)
        vectors = field[blob.mask].astype(np.float64)
        v = (vectors * w[:, None]).sum(axis=0)
        norm = float(np.hypot(*v))
        if norm > 1e-6 * max(1.0, float(w.sum())):
            blob.u, blob.source = v / norm, "field"
            lengths = np.hypot(vectors[:, 0], vectors[:, 1])
            blob.coherence = min(1.0, norm / max(float((lengths * w).sum()), 1e-12))


def _vote(blob: _Blob, prob: np.ndarray, cls: np.ndarray | None) -> None:
    if cls is None:
        blob.finger, blob.votes = None, None
        return
    votes = np.bincount(cls[blob.mask], weights=prob[blob.mask].astype(np.float64), minlength=NUM_FINGERS + 1)
    votes[0] = 0
    blob.votes = votes
    blob.finger = int(np.argmax(votes)) if votes.sum() > 0 else None


def _crop(arr: np.ndarray | None, x: int, y: int, w: int, h: int):
    return None if arr is None else arr[y:y + h, x:x + w]


def _union(a: _Blob, b: _Blob) -> _Blob:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1 = max(a.x + a.mask.shape[1], b.x + b.mask.shape[1])
    y1 = max(a.y + a.mask.shape[0], b.y + b.mask.shape[0])
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for blob in (a, b):
        mask[blob.y - y0:blob.y - y0 + blob.mask.shape[0], blob.x - x0:blob.x - x0 + blob.mask.shape[1]] |= blob.mask
    return _Blob(x0, y0, mask, merged_from=a.merged_from + b.merged_from)


def _gap(a: _Blob, b: _Blob, limit: float) -> float:
    """Smallest distance between the pixels of two blobs (inf beyond ``limit``)."""
    ax0, ay0, ax1, ay1 = a.x, a.y, a.x + a.mask.shape[1], a.y + a.mask.shape[0]
    bx0, by0, bx1, by1 = b.x, b.y, b.x + b.mask.shape[1], b.y + b.mask.shape[0]
    dx = max(0, bx0 - ax1, ax0 - bx1)
    dy = max(0, by0 - ay1, ay0 - by1)
    if math.hypot(dx, dy) > limit + 1:
        return math.inf
    joint = _union(a, b)
    only_a = np.zeros(joint.mask.shape, np.uint8)
    only_a[a.y - joint.y:a.y - joint.y + a.mask.shape[0], a.x - joint.x:a.x - joint.x + a.mask.shape[1]] = a.mask
    dist = cv2.distanceTransform((only_a == 0).astype(np.uint8), cv2.DIST_L2, 5)
    bm = np.zeros(joint.mask.shape, bool)
    bm[b.y - joint.y:b.y - joint.y + b.mask.shape[0], b.x - joint.x:b.x - joint.x + b.mask.shape[1]] = b.mask
    return float(dist[bm].min()) - 1.0 if bm.any() else math.inf


def angle_between(u: np.ndarray, v: np.ndarray, axial: bool) -> float:
    """Degrees between unit vectors (``axial``: between their axes, sign-free, 0..90)."""
    c = float(np.clip(u @ v, -1.0, 1.0))
    if axial:
        c = abs(c)
    return math.degrees(math.acos(c))


def _should_merge(a: _Blob, b: _Blob, config: PostprocessConfig) -> bool:
    if a.finger != b.finger:
        return False
    axial = a.source != "field" or b.source != "field"  # a shape axis has no sign
    if angle_between(a.u, b.u, axial) > config.merge_angle:
        return False
    mean = a.u + (b.u if a.u @ b.u >= 0 else -b.u)
    mean /= np.linalg.norm(mean)
    offset = b.centre - a.centre
    dist = float(np.hypot(*offset))
    if dist > 0 and angle_between(offset / dist, mean, axial=True) > config.merge_axis_angle:
        return False
    limit = max(config.merge_gap_min_px, config.merge_gap * math.sqrt(min(a.area, b.area)))
    return _gap(a, b, limit) <= limit


def postprocess(fg_prob: np.ndarray, class_prob: np.ndarray | None = None, field: np.ndarray | None = None, *,
                config: PostprocessConfig | None = None, image: np.ndarray | None = None, **overrides: Any
                ) -> list[Nail]:
    """Per-nail instances of one image's predictions (see the module docstring). ``image`` (uint8 RGB,
    same size): orients nails without a field from the photo. ``overrides``: PostprocessConfig fields."""
    config = replace(config or PostprocessConfig(), **overrides)
    prob = np.asarray(fg_prob, np.float32)
    if prob.ndim != 2:
        raise ValueError(f"fg_prob must be H x W, got {prob.shape}")
    height, width = prob.shape
    if field is not None:
        field = np.asarray(field, np.float32)
        if field.shape != (height, width, 2):
            raise ValueError(f"field must be H x W x 2 matching fg_prob, got {field.shape}")
    min_area = max(int(config.min_area), int(round(config.min_area_fraction * height * width)))
    fg = prob > config.threshold
    cls = _class_map(class_prob, prob.shape, fg)
    if cls is not None:
        fg &= cls > 0  # an integer class map may mark background with 0

    # 1-2. Connected components (Grana / BBDT), split by class.
    n, labels, stats, _ = _components(fg, config)
    blobs: list[_Blob] = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < max(1, min_area // 4):
            continue
        comp = labels[y:y + h, x:x + w] == i
        pc, cc = prob[y:y + h, x:x + w], _crop(cls, x, y, w, h)
        parts = [comp]
        if cc is not None:
            votes = np.bincount(cc[comp], weights=pc[comp].astype(np.float64), minlength=NUM_FINGERS + 1)
            parts = _split_by_class(comp, cc, votes, config, max(1, min_area // 4))
        for part in parts:
            ys, xs = np.nonzero(part)
            bx, by = int(xs.min()), int(ys.min())
            blob = _Blob(x + bx, y + by, part[by:ys.max() + 1, bx:xs.max() + 1])
            blobs.append(blob)

    def measure(blob: _Blob) -> None:
        h, w = blob.mask.shape
        pc = _crop(prob, blob.x, blob.y, w, h)
        _vote(blob, pc, _crop(cls, blob.x, blob.y, w, h))
        _direction(blob, pc, _crop(field, blob.x, blob.y, w, h))

    for blob in blobs:
        measure(blob)

    # 4. Merge split nails (greedy, closest pairs first, re-measured after each merge).
    if config.merge:
        merged = True
        while merged and len(blobs) > 1:
            merged = False
            pairs = sorted(((float(np.hypot(*(a.centre - b.centre))), i, j) for i, a in enumerate(blobs)
                            for j, b in enumerate(blobs) if i < j))
            for _, i, j in pairs:
                if _should_merge(blobs[i], blobs[j], config):
                    a, b = blobs[i], blobs[j]
                    gap = _gap(a, b, math.inf)
                    joint = _union(a, b)
                    r = max(1, int(math.ceil(gap / 2 + 1)))
                    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
                    padded = cv2.copyMakeBorder(joint.mask.astype(np.uint8), r, r, r, r, cv2.BORDER_CONSTANT, 0)
                    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[r:-r, r:-r] > 0
                    joint.mask = closed | joint.mask
                    measure(joint)
                    blobs = [blob for k, blob in enumerate(blobs) if k not in (i, j)] + [joint]
                    merged = True
                    break

    # 5. Instances.
    everything = None
    if image is not None:
        everything = np.zeros((height, width), bool)
        for blob in blobs:
            h, w = blob.mask.shape
            everything[blob.y:blob.y + h, blob.x:blob.x + w] |= blob.mask
    nails: list[Nail] = []
    for blob in blobs:
        area = blob.area
        if area < min_area:
            continue
        h, w = blob.mask.shape
        pc = _crop(prob, blob.x, blob.y, w, h)
        u = np.asarray(blob.u, np.float64)
        source, extra = blob.source, {}
        if source == "field":
            extra["field_coherence"] = round(blob.coherence, 4)
        if source == "shape" and image is not None:
            oriented, confidence = orient_from_image(image, blob.mask, (blob.x, blob.y), blob.centre, u, everything)
            if confidence > 0:
                u, source = oriented, "image"
                extra["orientation_confidence"] = round(confidence, 4)
        poly = _polygon_of(blob.mask, (blob.x, blob.y), (width, height), config.polygon_tolerance,
                           config.max_vertices)
        if poly is None:
            continue
        base, tip = axis_ends(poly, blob.centre, u)
        class_confidence = None
        if blob.finger is not None and class_prob is not None and np.asarray(class_prob).ndim == 3:
            cp = np.asarray(class_prob)[blob.y:blob.y + h, blob.x:blob.x + w, blob.finger - 1]
            class_confidence = float(cp[blob.mask].mean())
        nails.append(Nail(
            finger=blob.finger, bbox=(blob.x, blob.y, w, h), mask=blob.mask, area=area,
            direction=(float(u[0]), float(u[1])), angle=math.degrees(math.atan2(u[1], u[0])),
            direction_source=source, base=(float(base[0]), float(base[1])), tip=(float(tip[0]), float(tip[1])),
            polygon=[[float(x), float(y)] for x, y in list(poly.exterior.coords)[:-1]],
            confidence=float(pc[blob.mask].mean()), class_confidence=class_confidence,
            merged_from=blob.merged_from, extra=extra))
    nails.sort(key=lambda nail: (nail.bbox[0], nail.bbox[1]))
    return nails


def to_geometry(nails: list[Nail], landmarks: str = "field") -> dict:
    """The nails as one image's ``dataset.geometry`` dict (no confidence: the format has no such key).
    ``landmarks``: see :meth:`Nail.to_geometry`."""
    return {"nails": [nail.to_geometry(landmarks) for nail in nails], "ignore": []}


def to_dicts(nails: list[Nail]) -> list[dict]:
    """JSON-ready nails: geometry keys plus confidence, angle, direction source, area, bbox."""
    return [nail.to_dict() for nail in nails]


def config_dict(config: PostprocessConfig | None = None) -> dict:
    return asdict(config or PostprocessConfig())
