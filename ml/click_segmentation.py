"""Click a nail, get the nail (issue #18): one click inside a nail proposes its polygon.

Plain Python + NumPy + OpenCV + Shapely; never imports Django or an app.

    from ml.click_segmentation import segment_click
    result = segment_click(image_rgb, [(x, y, 1)])                  # image-only (GrabCut seeded by the click)
    result = segment_click(image_rgb, [(x, y, 1), (x2, y2, 0)], fg_prob=prob)   # with a model's probability map
    result.polygon, result.confidence, result.source                # [[x, y], ...] image px, 0..1, "image" | "model"

Points are ``(x, y, label)`` in image pixels (pixel centres at ``col + 0.5``, as in ``dataset/raster.py``),
``label`` 1 for a positive click (inside the nail), 0 for a negative one (outside it). At least one point is
positive.

How (every number lives in :class:`ClickRules`):

1. The window: a square crop around the positive points, ``crop_nails`` expected nail sizes wide (grown to
   hold every point). The nail size is ``nail_size`` when the caller knows it (from the image's other nails:
   :func:`nail_size_from_polygons`); else a few sizes (``prior_fractions`` of the photo's shorter side) are
   tried and the most confident answer wins. The crop is
   downscaled so its longer side is at most ``work_side`` pixels: the cost is bounded whatever the photo's
   size (a 12 MP photo costs what a small one does).
2. Image-only (``source="image"``), with :mod:`ml.click_outline`'s trained network (``outline_net``, the
   default when its weights exist): the network reads a square crop centred on the first positive point (the
   photo's colours and every point's mark) and gives each pixel's probability of being the clicked nail,
   which stands where a model's would (below), taken as it is even with negative points (the network read
   them; handing them to GrabCut instead did worse). On the tuning participants' photos it
   outlined nails better than GrabCut alone (``bench/fit_click_outline.py``'s cross-validation).
   Without it: ``cv2.grabCut`` initialised with a mask: sure background on the crop's
   border and at the negative points, sure foreground in a small disk at the first positive point, probable
   foreground in a nail-sized disk around it, probable background elsewhere. A later (corrective) positive
   point, often placed near the nail's edge, gets much smaller disks (``later_sure_radius``,
   ``later_probable_radius``): with the first point's disks it taught GrabCut the skin's colour and the region
   leaked into the finger (measured by ``bench/click_nail.py``'s two-click rows: a window around each point,
   choosing the nail size by the first point and refusing a growth past 1.6-2x the first region gained
   nothing more).
   With a model (``source="model"``): the model's probability in the crop (averaged with the network's
   where the network's crop reaches, ``model_with_outline_net``), thresholded at ``model_threshold``; the
   component holding the click is taken as it is when no negative point is given and the click is inside it.
   With a negative point, the network's probability alone where its crop reaches (``negatives_by_outline_net``):
   it reads the points and the model cannot, so a negative point could only move half of the mean; taken as
   it is, as without a model, at ``outline_level`` (before: GrabCut on the mean; ``bench/click_nail.py``'s
   two-click rows: of 18 negative points 15 raised the IoU, 6 before). A later positive point keeps the mean
   (46 of 66 raised it with the network's alone, 57 with the mean).
   Otherwise (the click outside what the probability shows, or a negative point with no trained network or
   with ``negatives_by_outline_net`` off) GrabCut refines it on the photo's colours, seeded by the probability (sure foreground where it is high, probable foreground where it is above
   ``model_threshold``, probable background elsewhere) and the clicks.
3. The connected component that holds the (first) positive click; its holes filled.
4. The polygon: the component is smoothed (or, when a probability was taken as it is, that probability
   near the component stands for it), upsampled to full resolution over its own bounding box only, traced
   at 0.5 with ``cv2.findContours`` and simplified by ``cv2.approxPolyDP`` with epsilon ``epsilon_px`` (1 px):
   the fewest vertices within 1 px of the traced outline.
5. Confidence in [0, 1], lower when the answer is doubtful: the region reaches the crop's border (it
   leaked into the finger or the background), it is much smaller or larger than a nail, it is far from
   convex, or its outline does not follow the photo's edges (image) / the model was unsure (model).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np
from shapely.geometry import Polygon

from ml.postprocess import postprocess

__all__ = ["ClickResult", "ClickRules", "NoNail", "model_context_nails", "nail_size_from_polygons", "prior_nail_sizes",
           "segment_click"]


@dataclass(frozen=True)
class ClickRules:
    """The numbers of the method (sizes in expected nail sizes unless named in px)."""

    prior_fractions: tuple = (0.07, 0.12, 0.2, 0.32)   # nail sizes tried without other nails (fractions of the
                                                      # photo's shorter side): the most confident answer wins
    crop_nails: float = 2.5           # the window is this many nail sizes wide
    work_side: int = 128              # the window is downscaled to at most this many px on its longer side
    border_px: int = 2                # sure-background band on the window's border (work px)
    probable_radius: float = 0.45     # probable-foreground disk around the first positive point
    sure_radius: float = 0.15         # sure-foreground disk at the first positive point
    negative_radius: float = 0.06     # sure-background disk at a negative point
    later_sure_radius: float = 0.05   # sure-foreground disk at a later (corrective) positive point: small, so
    later_probable_radius: float = 0.1  # that a point near the nail's edge does not teach GrabCut the skin's colour
    iterations: int = 4               # GrabCut iterations
    model_threshold: float = 0.5      # the model's foreground: probability above this
    outline_level: float = 0.5        # the network's foreground where its probability stands alone (no model, or
                                      # a model's negative point): probability above this
    model_sure: float = 0.9           # ... sure foreground for GrabCut above this
    smooth_sigma: float = 0.8         # Gaussian sigma (work px) before upsampling the component
    max_confidence: float = 0.98      # no proposal is certain
    epsilon_px: float = 1.0           # approxPolyDP tolerance at full resolution
    min_area: float = 0.08            # areas (in nail sizes squared) below / above which confidence drops
    max_area: float = 3.0
    outline_net: bool = True          # without a model: ml.click_outline's network (when trained) gives the prior
    outline_network: object | None = None  # ... that network (None: its trained weights, ml.click_outline.WEIGHTS_PATH)
    model_with_outline_net: bool = True  # with a model: the mean of its probability and the network's
    negatives_by_outline_net: bool = True  # with a model and a negative point: the network's alone (it reads the
                                      # points, the model cannot), the model's only beyond its crop
    positives_by_outline_net: bool = False  # ... and with a later positive point (measured worse: the mean stays)
    seed: int = 18                    # OpenCV's RNG (GrabCut's k-means): the same click gives the same nail


DEFAULT_RULES = ClickRules()


class NoNail(ValueError):
    """The points do not make a nail (no positive point, or a point outside the image)."""


@dataclass
class ClickResult:
    polygon: list[list[float]]        # [[x, y], ...] image px, closed implicitly, >= 3 vertices
    confidence: float
    source: str                       # "image" | "model"
    details: dict = field(default_factory=dict)   # window, work scale, leaked, area ratio, edge score...

    def to_dict(self) -> dict:
        return {"polygon": self.polygon, "confidence": self.confidence, "source": self.source, "details": self.details}


def prior_nail_sizes(height: int, width: int, rules: ClickRules = DEFAULT_RULES) -> list[float]:
    """The nail sizes (px, about 1.3 x the square root of a nail's area) tried on a photo without other nails."""
    return [max(8.0, f * min(height, width)) for f in rules.prior_fractions]


def nail_size_from_polygons(polygons: Sequence) -> float | None:
    """Expected nail size from the image's other nails: 1.3 x the median square root of their areas."""
    roots = []
    for polygon in polygons or []:
        points = np.asarray(polygon, np.float64).reshape(-1, 2)
        if len(points) >= 3:
            x, y = points[:, 0], points[:, 1]
            area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
            if area > 0:
                roots.append(math.sqrt(area))
    return 1.3 * float(np.median(roots)) if roots else None


CONTEXT_SIDE = 512       # model_context_nails reads the probability at most this long
CONTEXT_OVERLAP = 0.3    # ... and leaves out a nail of the model's with this share of its area under a given one


def model_context_nails(fg_prob: np.ndarray, polygons: Sequence, side: int = CONTEXT_SIDE,
                        overlap: float = CONTEXT_OVERLAP) -> list[list[list[float]]]:
    """The nails a model's probability map (photo size, float 0..1 or uint8 0..255) shows that none of
    ``polygons`` (the image's nails and the proposal, photo px) already is: ``ml.postprocess``'s instances,
    read on a copy at most ``side`` px long, less those with ``overlap`` or more of their area under a given
    polygon; their polygons in photo px. Click-a-nail reads a new nail's finger and base/tip against them
    as well as against the drawn ones, so the first nail clicked on a hand is read in the whole hand's layout."""
    prob = np.asarray(fg_prob)
    if prob.dtype != np.uint8:
        prob = prob.astype(np.float32)
    height, width = prob.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:  # shrunk first: a 12 MP map as floats would cost more than the rest together
        prob = cv2.resize(prob, (max(1, round(width * scale)), max(1, round(height * scale))),
                          interpolation=cv2.INTER_AREA)
    prob = prob.astype(np.float32) / 255.0 if prob.dtype == np.uint8 else prob
    given = [Polygon(p).buffer(0) for p in polygons if len(p) >= 3]
    out = []
    for nail in postprocess(prob):
        shape = Polygon(np.asarray(nail.polygon, np.float64) / scale).buffer(0)
        if shape.geom_type == "MultiPolygon":  # a simplified outline that crossed itself: its biggest part
            shape = max(shape.geoms, key=lambda part: part.area)
        if shape.is_empty or shape.area <= 0:
            continue
        if any(shape.intersection(g).area >= overlap * shape.area for g in given):
            continue
        out.append([[round(float(x), 2), round(float(y), 2)] for x, y in np.asarray(shape.exterior.coords)[:-1]])
    return out


def _check_points(points, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    positives, negatives = [], []
    for point in points:
        x, y, label = float(point[0]), float(point[1]), int(point[2])
        if not (0 <= x <= width and 0 <= y <= height):
            raise NoNail(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
        (positives if label == 1 else negatives).append((x, y))
    if not positives:
        raise NoNail("at least one point must be positive (inside the nail)")
    return np.asarray(positives, np.float64).reshape(-1, 2), np.asarray(negatives, np.float64).reshape(-1, 2)


def _window(positives: np.ndarray, negatives: np.ndarray, size: float, width: int, height: int,
            rules: ClickRules) -> tuple[int, int, int, int]:
    """The crop ``(x0, y0, x1, y1)``: ``crop_nails`` nail sizes around the positives, holding every point."""
    half = rules.crop_nails * size / 2
    lo = positives.min(axis=0) - half
    hi = positives.max(axis=0) + half
    if len(negatives):
        lo = np.minimum(lo, negatives.min(axis=0) - 0.25 * size)
        hi = np.maximum(hi, negatives.max(axis=0) + 0.25 * size)
    x0, y0 = max(0, int(math.floor(lo[0]))), max(0, int(math.floor(lo[1])))
    x1, y1 = min(width, int(math.ceil(hi[0]))), min(height, int(math.ceil(hi[1])))
    return x0, y0, max(x1, x0 + 2), max(y1, y0 + 2)


def _seed_radius(k: int, rules, sure: bool) -> float:
    """The seed disk's radius (in nail sizes) at the ``k``-th positive point: the first point's, or the small one
    of a later, corrective point (which often lies near the nail's edge)."""
    if sure:
        return rules.later_sure_radius if k else rules.sure_radius
    return rules.later_probable_radius if k else rules.probable_radius


def _disk(mask: np.ndarray, centre, radius: float, value: int) -> None:
    cv2.circle(mask, (int(round(centre[0])), int(round(centre[1]))), max(1, int(round(radius))), int(value), -1)


def _border(mask: np.ndarray, band: int, value: int, box, full_size) -> None:
    """Sure background on the window's border, except where the window is cut by the photo's own edge (a nail
    may touch the photo's edge; it cannot be assumed background there)."""
    (x0, y0, x1, y1), (width, height) = box, full_size
    if y0 > 0:
        mask[:band] = value
    if y1 < height:
        mask[-band:] = value
    if x0 > 0:
        mask[:, :band] = value
    if x1 < width:
        mask[:, -band:] = value


def _grabcut(small_rgb: np.ndarray, init: np.ndarray, rules: ClickRules) -> np.ndarray:
    mask = init.copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(rules.seed)
    has_fg = np.any((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))
    has_bg = np.any((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD))
    if has_fg and has_bg:
        try:
            cv2.grabCut(cv2.cvtColor(small_rgb, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, rules.iterations,
                        cv2.GC_INIT_WITH_MASK)
        except cv2.error:  # degenerate colour models (e.g. a flat crop): keep the initial guess
            mask = init.copy()
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def _component_at(foreground: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected component of ``foreground`` holding the first seed that lies in it, holes filled."""
    count, labels = cv2.connectedComponents(foreground.astype(np.uint8), connectivity=8)
    h, w = foreground.shape
    picked = 0
    for x, y in seeds:
        c, r = min(w - 1, max(0, int(x))), min(h - 1, max(0, int(y)))
        if labels[r, c]:
            picked = labels[r, c]
            break
    if not picked:
        return np.zeros_like(foreground, bool)
    component = (labels == picked).astype(np.uint8)
    outside = np.ones((h + 2, w + 2), np.uint8)   # background, with a ring around it: holes are what the
    outside[1:-1, 1:-1] = 1 - component           # flood from the ring does not reach
    flood = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(outside, flood, (0, 0), 2)
    return (component == 1) | (outside[1:-1, 1:-1] == 1)


def _polygon(component: np.ndarray, box, scale: float, rules: ClickRules, prob: np.ndarray | None = None,
             level: float = 0.5) -> list[list[float]]:
    """The component's outline at full resolution, simplified within ``epsilon_px``: the 0.5 contour of the
    component smoothed, or with ``prob`` (a probability the component was thresholded from at ``level``) the
    ``level`` contour of the probability itself near the component (finer than the work grid)."""
    rows, cols = np.nonzero(component)
    pad = 3
    r0, r1 = max(0, rows.min() - pad), min(component.shape[0], rows.max() + pad + 1)
    c0, c1 = max(0, cols.min() - pad), min(component.shape[1], cols.max() + pad + 1)
    piece = component[r0:r1, c0:c1].astype(np.float32)
    if prob is not None:
        near = cv2.dilate(piece, np.ones((3, 3), np.uint8)) > 0
        piece = np.where(near, prob[r0:r1, c0:c1], 0).astype(np.float32)
    elif rules.smooth_sigma > 0:
        piece = cv2.GaussianBlur(piece, (0, 0), rules.smooth_sigma)
    x0, y0 = box[0], box[1]
    # Full-resolution grid of the piece: full px (X, Y) <-> work px ((X + .5) * scale - .5, ...).
    fx0, fy0 = int(math.floor(x0 + c0 / scale)), int(math.floor(y0 + r0 / scale))
    fx1, fy1 = int(math.ceil(x0 + c1 / scale)), int(math.ceil(y0 + r1 / scale))
    gx = (np.arange(fx0, fx1) + 0.5 - x0) * scale - 0.5 - c0
    gy = (np.arange(fy0, fy1) + 0.5 - y0) * scale - 0.5 - r0
    map_x = np.broadcast_to(gx[None, :], (len(gy), len(gx))).astype(np.float32)
    map_y = np.broadcast_to(gy[:, None], (len(gy), len(gx))).astype(np.float32)
    full = cv2.remap(piece, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    binary = (full >= (level if prob is not None else 0.5)).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return []
    outline = max(contours, key=cv2.contourArea)
    simple = cv2.approxPolyDP(outline, rules.epsilon_px, True).reshape(-1, 2)
    if len(simple) < 3:
        return []
    return [[round(float(x) + fx0 + 0.5, 2), round(float(y) + fy0 + 0.5, 2)] for x, y in simple]


def _edge_score(small_rgb: np.ndarray, component: np.ndarray) -> float:
    """How well the outline follows the photo's edges: the median gradient on the outline above the window's
    median gradient, against the window's strong gradients (90th percentile) above it. About 0 on an outline
    drawn through texture or noise, 1 on a typical strong edge; it may pass 1 (the score that picks the size)."""
    grey = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), 0.8)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    edge = cv2.morphologyEx(component.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    if not edge.any():
        return 0.0
    typical, strong = np.percentile(magnitude, [50, 90])
    spread = max(float(strong - typical), 8.0)   # 8: a 2-grey-level step under Sobel, the floor of "an edge"
    return float(max(0.0, (np.median(magnitude[edge]) - typical) / spread))


def _shape_facts(component: np.ndarray, window_open: dict, size_work: float, rules: ClickRules) -> dict:
    area = float(component.sum())
    h, w = component.shape
    touches = []
    if window_open["top"] and component[0].any():
        touches.append("top")
    if window_open["bottom"] and component[h - 1].any():
        touches.append("bottom")
    if window_open["left"] and component[:, 0].any():
        touches.append("left")
    if window_open["right"] and component[:, w - 1].any():
        touches.append("right")
    contours, _ = cv2.findContours(component.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.contourArea(cv2.convexHull(max(contours, key=cv2.contourArea))) if contours else 0.0
    solidity = min(1.0, area / hull) if hull > 0 else 0.0
    return {"area_ratio": round(area / (size_work ** 2), 3), "leaked": touches, "solidity": round(solidity, 3)}


def _score(facts: dict, evidence: float, rules: ClickRules) -> float:
    """The answer's plausibility (not capped; the confidence is this within [0, max_confidence])."""
    ratio = facts["area_ratio"]
    if ratio < rules.min_area:
        size = ratio / rules.min_area
    elif ratio > rules.max_area:
        size = rules.max_area / ratio
    else:
        size = 1.0
    leak = 0.35 if facts["leaked"] else 1.0
    convex = min(1.0, max(0.0, (facts["solidity"] - 0.6) / 0.3))
    return float(evidence * size * leak * (0.4 + 0.6 * convex))


def _outline_prior(image, positives, negatives, size: float, box, scale: float, work_size, network=None
                   ) -> np.ndarray | None:
    """``ml.click_outline``'s probability of the clicked nail on the work grid (NaN outside its crop), or None
    without its trained network."""
    from ml.click_outline import outline_probability

    points = [(x, y, 1) for x, y in positives] + [(x, y, 0) for x, y in negatives]
    read = outline_probability(image, points, size, network)
    if read is None:
        return None
    prob, affine = read
    # A work pixel index j is the photo's pixel index (j + 0.5) / scale + x0 - 0.5 (the same along y).
    offset = np.array([box[0] + 0.5 / scale - 0.5, box[1] + 0.5 / scale - 0.5])
    to_crop = np.concatenate([affine[:, :2] / scale, (affine[:, :2] @ offset + affine[:, 2])[:, None]], axis=1)
    return cv2.warpAffine(prob, to_crop, tuple(work_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"))


def segment_click(image_rgb: np.ndarray, points: Sequence, *, fg_prob: np.ndarray | None = None,
                  nail_size: float | None = None, rules: ClickRules = DEFAULT_RULES) -> ClickResult:
    """The nail at the clicks (see the module docstring). ``fg_prob``: the model's nail probability, H x W
    float in [0, 1] or uint8 (255 = nail), at the photo's size. Raises :class:`NoNail` for points that
    make no nail; a click that finds nothing gives an empty polygon with confidence 0."""
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 H x W x 3 RGB, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if fg_prob is not None and tuple(fg_prob.shape[:2]) != (height, width):
        raise ValueError(f"fg_prob is {fg_prob.shape[:2]}, the image {height}x{width}")
    positives, negatives = _check_points(points, width, height)
    sizes = [float(nail_size)] if nail_size else prior_nail_sizes(height, width, rules)
    results = [_segment(image, positives, negatives, size, fg_prob, rules) for size in sizes]
    best = max(results, key=lambda r: r.details.get("score", 0.0))
    if len(results) > 1:
        best.details["tried_sizes"] = [[round(size, 1), r.details.get("score", 0.0)] for size, r in zip(sizes, results)]
    return best


def _segment(image: np.ndarray, positives: np.ndarray, negatives: np.ndarray, size: float, fg_prob, rules: ClickRules
             ) -> ClickResult:
    """One window, one nail size (see the module docstring)."""
    height, width = image.shape[:2]
    box = _window(positives, negatives, size, width, height, rules)
    x0, y0, x1, y1 = box
    scale = min(1.0, rules.work_side / max(x1 - x0, y1 - y0))
    work_w, work_h = max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale))
    crop = image[y0:y1, x0:x1]
    small = cv2.resize(crop, (work_w, work_h), interpolation=cv2.INTER_AREA) if scale < 1 else np.ascontiguousarray(crop)
    to_work = lambda pts: (pts - [x0, y0]) * scale  # noqa: E731  (pixel-centre coordinates, scaled)
    pos_w, neg_w = to_work(positives), to_work(negatives)
    size_w = size * scale
    band = rules.border_px
    window_open = {"top": y0 > 0, "bottom": y1 < height, "left": x0 > 0, "right": x1 < width}

    source, evidence = "image", None
    mask = np.full((work_h, work_w), cv2.GC_PR_BGD, np.uint8)
    prob = contour_of = None
    network_read = False   # the probability is the network's, which read every point
    if fg_prob is not None:
        source = "model"
        prob = fg_prob[y0:y1, x0:x1].astype(np.float32)
        if fg_prob.dtype == np.uint8:
            prob /= 255.0
        prob = cv2.resize(prob, (work_w, work_h), interpolation=cv2.INTER_AREA) if scale < 1 else prob
        if rules.outline_net and rules.model_with_outline_net:  # the mean of the two, where the network looked
            read = _outline_prior(image, positives, negatives, size, box, scale, (work_w, work_h),
                                  rules.outline_network)
            if read is not None:
                network_read = ((len(negatives) > 0 and rules.negatives_by_outline_net)
                                or (len(positives) > 1 and rules.positives_by_outline_net))
                fused = read if network_read else (prob + read) / 2
                prob = np.where(np.isnan(read), prob, fused).astype(np.float32)
    elif rules.outline_net:
        prob = _outline_prior(image, positives, negatives, size, box, scale, (work_w, work_h), rules.outline_network)
        prob = None if prob is None else np.nan_to_num(prob, nan=0.0)
        network_read = prob is not None
    level = rules.model_threshold if source == "model" and not network_read else rules.outline_level
    if prob is not None:
        confident = _component_at(prob >= level, pos_w)
        # Taken as it is without negative points, and with them when the network read them too.
        if confident.any() and (not len(neg_w) or network_read):
            foreground = confident
            contour_of = prob
        else:
            mask[prob >= level] = cv2.GC_PR_FGD
            mask[confident & (prob >= rules.model_sure)] = cv2.GC_FGD
            if not confident.any():  # the model missed this nail: the click's own prior as well
                for k, p in enumerate(pos_w):
                    _disk(mask, p, _seed_radius(k, rules, sure=False) * size_w, cv2.GC_PR_FGD)
            foreground = None
    else:
        for k, p in enumerate(pos_w):
            _disk(mask, p, _seed_radius(k, rules, sure=False) * size_w, cv2.GC_PR_FGD)
        foreground = None
    if foreground is None:
        _border(mask, band, cv2.GC_BGD, box, (width, height))
        for p in neg_w:
            _disk(mask, p, max(1.0, rules.negative_radius * size_w), cv2.GC_BGD)
        for k, p in enumerate(pos_w):
            _disk(mask, p, max(1.0, _seed_radius(k, rules, sure=True) * size_w), cv2.GC_FGD)
        foreground = _grabcut(small, mask, rules)
        for p in neg_w:  # a negative click is outside the nail, whatever the colours say
            cut = np.zeros_like(mask)
            _disk(cut, p, max(1.0, rules.negative_radius * size_w), 1)
            foreground &= cut == 0
    component = _component_at(foreground, pos_w)
    details = {"window": list(box), "work_scale": round(scale, 4), "nail_size": round(size, 1)}
    if not component.any():
        return ClickResult([], 0.0, source, {**details, "reason": "nothing found at the click"})
    facts = _shape_facts(component, window_open, size_w, rules)
    edges = _edge_score(small, component)
    if prob is not None:
        inside = float(prob[component].mean())
        # The network's nail-shaped guess is sure of itself even where the photo shows no nail (a flat patch):
        # its outline must also follow the photo's edges; a trained model's probability counts for more.
        evidence = inside * ((0.7 + 0.3 * min(1.0, edges)) if source == "model" else (0.5 + 0.5 * min(1.0, edges)))
    else:
        evidence = 0.35 + 0.65 * edges
    polygon = _polygon(component, box, scale, rules, contour_of, level)
    if not polygon:
        return ClickResult([], 0.0, source, {**details, **facts, "reason": "the region is too small to outline"})
    score = _score(facts, evidence, rules)
    confidence = round(min(rules.max_confidence, max(0.0, score)), 3)
    return ClickResult(polygon, confidence, source, {**details, **facts, "edge_score": round(edges, 3), "score": round(score, 4)})
