"""Nail polish rendering (Duke et al., CVPRW 2019, "Post-processing and rendering"), plain NumPy + OpenCV.

Never imports Django (nor torch).

    from ml.render import render
    out = render(image_rgb, geometry, "#C8102E", finish="glossy")   # labels (dataset.geometry dict)
    out = render(image_rgb, nails, "#C8102E", finish="matte")       # predictions (ml.postprocess.Nail list)
    out.image  # uint8 H x W x 3; out.alpha: float32 H x W, 0 exactly where nothing was painted

What it does per nail (our reading of the paper's one sentence; see ``docs/rendering.md``):

* **Axis**: base -> tip from the landmarks (labels), the predicted direction (predictions), or, without
  either, the polygon's principal axis oriented from the photo (the finger goes on beyond the base:
  :func:`ml.postprocess.orient_from_image`).
* **Stretch toward the tip** (hides the light distal edge the labels often stop short of): every vertex is
  pushed along the axis by ``stretch`` x the nail length x smoothstep of its position along the axis (0 at
  the base half, full at the tip). The push is monotone along the axis, so the polygon stays simple.
* **Mask**: the stretched polygon rasterized by ``dataset.raster.rasterize`` (pixel-centre rule) at
  ``supersample`` x the resolution in the nail's box; the alpha is a smoothstep of the distance to the
  outline over ``feather`` px *inside* the polygon, averaged back to image pixels (anti-aliased, feathered
  edge). Alpha is 0, and the pixel bit-identical, everywhere outside the stretched polygon.
* **Colour, keeping the shading** (in CIE Lab): polish L = polish colour's L x the photo's exposure
  (the nail's median lightness against a well-exposed bare nail's, square root, 0.55..1.1) x the photo's
  own low-frequency lightness relative to the nail's median (compressed by the finish's ``shading_gamma`` so
  the white free edge and the pink bed do not show through) x a cylinder term (darker toward the nail's
  sides) x a gentle base -> tip gradient, plus the photo's fine detail (real reflections); chroma from the
  polish colour.
* **Specular light**: a soft streak along the base -> tip axis (Gaussian across, faded in and out along
  the axis) blended toward white (tinted by the colour for metallic); the paper's "gradient along the
  base-tip axis to imitate specular reflection".
* **Finishes**: glossy (bright narrow streak, more photo detail), matte (no streak, soft shading, slightly
  chalky), metallic (strong contrast, coloured broad highlight, fine flakes).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import cv2
import numpy as np

from dataset.raster import rasterize
from ml.postprocess import Nail, nail_axis, orient_from_image

__all__ = [
    "FINISHES",
    "Finish",
    "PALETTE",
    "RenderOptions",
    "RenderResult",
    "parse_color",
    "render",
    "side_by_side",
]


@dataclass(frozen=True)
class Finish:
    """Look of one finish (L is CIE lightness, 0..100)."""

    name: str
    shading_gamma: float     # exponent on the photo's relative low-frequency lightness
    detail: float            # weight of the photo's fine lightness detail (real reflections, texture)
    curvature: float         # darkening toward the nail's sides (cylinder shading), at |s| = 1
    gradient: float          # lightness change from base to tip (+: lighter at the base)
    highlight: float         # strength of the specular streak (0..1 toward the highlight colour)
    highlight_width: float   # Gaussian width of the streak across the nail, in half-widths
    highlight_offset: float  # streak position across the nail, toward the light (upper left), half-widths
    highlight_tint: float    # 0: white highlight, 1: polish-coloured
    glint: float             # small sharp reflection near the base (glossy)
    chroma: float            # chroma multiplier
    lightness: float         # L offset
    sparkle: float           # metallic flakes: L noise amplitude


FINISHES: dict[str, Finish] = {
    "glossy": Finish("glossy", shading_gamma=0.55, detail=0.30, curvature=0.22, gradient=0.06, highlight=0.62,
                     highlight_width=0.22, highlight_offset=0.28, highlight_tint=0.1, glint=0.5, chroma=1.0,
                     lightness=0.0, sparkle=0.0),
    "matte": Finish("matte", shading_gamma=0.40, detail=0.06, curvature=0.12, gradient=0.03, highlight=0.10,
                    highlight_width=0.9, highlight_offset=0.15, highlight_tint=0.3, glint=0.0, chroma=0.9,
                    lightness=3.0, sparkle=0.0),
    "metallic": Finish("metallic", shading_gamma=0.85, detail=0.12, curvature=0.45, gradient=0.12, highlight=0.6,
                       highlight_width=0.5, highlight_offset=0.2, highlight_tint=0.6, glint=0.2, chroma=1.1,
                       lightness=0.0, sparkle=1.6),
}

#: Colours offered by the try-on page (name, hex).
PALETTE: list[tuple[str, str]] = [
    ("Classic red", "#C8102E"), ("Cherry", "#9B111E"), ("Coral", "#FF6F61"), ("Nude", "#D8A48F"),
    ("Ballet pink", "#F4C2C2"), ("Fuchsia", "#D1007A"), ("Plum", "#5E2750"), ("Navy", "#1F2A44"),
    ("Teal", "#00827F"), ("Gold", "#C9A227"), ("Black", "#111111"), ("White", "#F5F5F0"),
]

_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")


def parse_color(value: str | Iterable[int]) -> tuple[int, int, int]:
    """``"#C8102E"``, ``"c8102e"``, ``"#c12"`` or an (r, g, b) triple of 0..255 -> (r, g, b)."""
    if isinstance(value, str):
        match = _HEX.match(value.strip())
        if not match:
            raise ValueError(f"colour must be #RRGGBB (hex), got {value!r}")
        digits = match[1]
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    rgb = tuple(value)
    if len(rgb) != 3 or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in rgb):
        raise ValueError(f"colour must be three integers 0..255, got {value!r}")
    return tuple(int(c) for c in rgb)  # type: ignore[return-value]


@dataclass(frozen=True)
class RenderOptions:
    """``stretch``: push of the tip, fraction of the nail length; ``feather``: edge width in px (None:
    4 % of the nail width, 0.75..3 px); ``supersample``: rasterization factor of the anti-aliasing;
    ``light``: direction the light comes from (image coords, default upper left); ``smooth``: smooth the
    outline (labels traced along pixel edges are staircases); ``min_orientation_confidence``: a nail
    oriented from the photo with less confidence is rendered symmetrically (no stretch, no glint), since
    its tip may be at either end."""

    stretch: float = 0.08
    smooth: bool = True
    min_orientation_confidence: float = 0.1
    feather: float | None = None
    supersample: int = 4
    light: tuple[float, float] = (-1.0, -1.0)
    opacity: float = 1.0


@dataclass
class RenderResult:
    image: np.ndarray                      # uint8 H x W x 3
    alpha: np.ndarray                      # float32 H x W: 0 where untouched
    nails: list[dict] = field(default_factory=list)  # per nail: stretched polygon, base, tip, axis source

    @property
    def painted(self) -> np.ndarray:
        return self.alpha > 0


# ----------------------------------------------------------------------------------------------------
# Nails in, whatever they come from
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Shape:
    polygon: np.ndarray            # (n, 2) float64 image px
    u: np.ndarray                  # unit base -> tip
    source: str                    # "landmarks", "field", "image", "shape"
    confidence: float = 1.0        # of the orientation (photo-based ones)


def _as_shapes(image: np.ndarray, nails, everything: np.ndarray | None) -> list[_Shape]:
    if isinstance(nails, dict):
        nails = nails.get("nails") or []
    shapes = []
    height, width = image.shape[:2]
    for nail in nails:
        if isinstance(nail, Nail):
            pts = np.asarray(nail.polygon, np.float64)
            u = np.asarray(nail.direction, np.float64)
            source, confidence = nail.direction_source, float(nail.extra.get("orientation_confidence", 1.0))
            if source == "shape":  # no field and not oriented yet: try the photo
                centre, _ = nail_axis(pts)
                oriented, confidence = orient_from_image(image, nail.mask, nail.bbox[:2], centre, u, everything)
                if confidence > 0:
                    u, source = oriented, "image"
            shapes.append(_Shape(pts, u / np.linalg.norm(u), source, confidence))
            continue
        pts = np.asarray(nail.get("polygon"), np.float64)
        if pts.ndim != 2 or len(pts) < 3 or pts.shape[1] != 2 or not np.isfinite(pts).all():
            continue
        base, tip = nail.get("base"), nail.get("tip")
        if base is not None and tip is not None and math.dist(base, tip) > 1e-6:
            u = np.asarray(tip, np.float64) - np.asarray(base, np.float64)
            shapes.append(_Shape(pts, u / np.linalg.norm(u), "landmarks"))
            continue
        centre, axis = nail_axis(pts)
        x0, y0 = np.floor(pts.min(axis=0)).astype(int)
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        source, confidence = "shape", 0.0
        if x1 > x0 and y1 > y0:
            mask = rasterize({"nails": [{"polygon": (pts - (x0, y0)).tolist()}]}, x1 - x0, y1 - y0).foreground > 0
            oriented, confidence = orient_from_image(image, mask, (x0, y0), centre, axis, everything)
            if confidence > 0:
                axis, source = oriented, "image"
        shapes.append(_Shape(pts, axis, source, confidence))
    return shapes


def _all_nails_mask(image: np.ndarray, nails) -> np.ndarray:
    height, width = image.shape[:2]
    if isinstance(nails, dict):
        nails = nails.get("nails") or []
    out = np.zeros((height, width), bool)
    polys = []
    for nail in nails:
        if isinstance(nail, Nail):
            x, y, w, h = nail.bbox
            out[y:y + h, x:x + w] |= nail.mask
        else:
            polys.append({"polygon": nail.get("polygon")})
    if polys:
        out |= rasterize({"nails": polys}, width, height).foreground > 0
    return out


# ----------------------------------------------------------------------------------------------------
# One nail
# ----------------------------------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _smooth_polygon(pts: np.ndarray) -> np.ndarray:
    """The ring resampled every ~0.5 px and smoothed by a circular Gaussian of ~1.5 px (labels traced
    along pixel edges are staircases; polish edges are not). Shrinks convex outlines by < 0.1 px."""
    closed = np.vstack([pts, pts[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    perimeter = float(seg.sum())
    if perimeter < 8:
        return pts
    n = int(min(4000, max(32, perimeter / 0.5)))
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.linspace(0.0, perimeter, n, endpoint=False)
    ring = np.stack([np.interp(at, cum, closed[:, 0]), np.interp(at, cum, closed[:, 1])], axis=1)
    sigma = float(np.clip(0.012 * perimeter, 0.6, 2.0)) * n / perimeter  # in samples
    radius = int(math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    wrapped = np.concatenate([ring[-radius:], ring, ring[:radius]]) if radius else ring
    out = np.stack([np.convolve(wrapped[:, i], k, mode="valid") for i in (0, 1)], axis=1)
    return out if len(out) == n else ring


def _stretch(pts: np.ndarray, u: np.ndarray, amount: float) -> np.ndarray:
    t = pts @ u
    t0, t1 = float(t.min()), float(t.max())
    length = max(t1 - t0, 1e-6)
    w = _smoothstep((t - t0) / length * 2.0 - 1.0)  # 0 on the base half, rising to 1 at the tip
    return pts + np.outer(w * amount * length, u)


def _blur_masked(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: Gaussian average of ``values`` over ``weights`` (0 where no weight)."""
    num = cv2.GaussianBlur(values * weights, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    den = cv2.GaussianBlur(weights, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return num / np.maximum(den, 1e-4), den


def _nail_coordinates(mask: np.ndarray, origin: np.ndarray, u: np.ndarray, t0: float, length: float,
                      shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of a crop: t (0 base .. 1 tip, along ``u``) and s (-1..1 across, relative to the nail's
    local width at that t; positive toward ``perp = (-uy, ux)``)."""
    h, w = shape
    perp = np.array([-u[1], u[0]])
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    px, py = gx + 0.5 + origin[0], gy + 0.5 + origin[1]
    tt = px * u[0] + py * u[1]
    ss = px * perp[0] + py * perp[1]
    t = (tt - t0) / max(length, 1e-6)
    bins = 24
    inside = mask > 0
    if not inside.any():
        return t, np.zeros_like(t)
    b = np.clip((t[inside] * bins).astype(int), 0, bins - 1)
    lo = np.full(bins, np.inf)
    hi = np.full(bins, -np.inf)
    np.minimum.at(lo, b, ss[inside])
    np.maximum.at(hi, b, ss[inside])
    ok = np.isfinite(lo)
    idx = np.arange(bins)
    lo = np.interp(idx, idx[ok], lo[ok])
    hi = np.interp(idx, idx[ok], hi[ok])
    kernel = np.array([1, 2, 3, 2, 1], np.float64) / 9
    lo = np.convolve(np.pad(lo, 2, mode="edge"), kernel, "valid")
    hi = np.convolve(np.pad(hi, 2, mode="edge"), kernel, "valid")
    centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 0.5)
    pos = np.clip(t * bins - 0.5, 0, bins - 1)
    c = np.interp(pos, idx, centre).astype(np.float32)
    hw = np.interp(pos, idx, half).astype(np.float32)
    return t.astype(np.float32), ((ss - c) / hw).astype(np.float32)


def _noise(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(shape).astype(np.float32)
    return cv2.GaussianBlur(n, (0, 0), 0.5) * 1.4


def _paint_nail(out: np.ndarray, alpha_total: np.ndarray, image: np.ndarray, shape: _Shape,
                colour_lab: np.ndarray, finish: Finish, options: RenderOptions) -> dict | None:
    height, width = image.shape[:2]
    pts, u = shape.polygon, shape.u
    perp = np.array([-u[1], u[0]])
    t_all = pts @ u
    s_all = pts @ perp
    length = float(t_all.max() - t_all.min())
    nail_width = float(s_all.max() - s_all.min())
    if length < 1.0 or nail_width < 1.0:
        return None
    sure = shape.source != "shape" and shape.confidence >= options.min_orientation_confidence
    smooth = _smooth_polygon(pts) if options.smooth else pts
    stretched = _stretch(smooth, u, options.stretch) if options.stretch > 0 and sure else smooth
    feather = options.feather if options.feather is not None else float(np.clip(0.04 * nail_width, 0.75, 3.0))

    x0 = int(max(0, math.floor(stretched[:, 0].min()) - 1))
    y0 = int(max(0, math.floor(stretched[:, 1].min()) - 1))
    x1 = int(min(width, math.ceil(stretched[:, 0].max()) + 1))
    y1 = int(min(height, math.ceil(stretched[:, 1].max()) + 1))
    if x1 <= x0 or y1 <= y0:
        return None
    cw, ch = x1 - x0, y1 - y0
    origin = np.array([x0, y0], np.float64)
    S = max(1, int(options.supersample))

    # Alpha: the stretched polygon at S x, feathered inside its outline, averaged to image pixels.
    geom = {"nails": [{"polygon": (stretched - origin).tolist()}]}
    big = rasterize(geom, cw, ch, out_size=(S * cw, S * ch)).foreground
    if not big.any():
        return None
    padded = cv2.copyMakeBorder(big, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    soft = _smoothstep(dist / (S * max(feather, 1e-3))).astype(np.float32)
    alpha = cv2.resize(soft, (cw, ch), interpolation=cv2.INTER_AREA) if S > 1 else soft
    alpha = np.where(big.reshape(ch, S, cw, S).any(axis=(1, 3)), alpha, 0.0).astype(np.float32)
    alpha *= float(options.opacity)
    if not (alpha > 0).any():
        return None

    # The photo's lightness inside the original (unstretched) nail.
    orig = rasterize({"nails": [{"polygon": (pts - origin).tolist()}]}, cw, ch).foreground.astype(np.float32)
    if orig.sum() < 1:
        orig = (alpha > 0.5).astype(np.float32)
    crop = image[y0:y1, x0:x1, :3].astype(np.float32) / 255.0
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2Lab)
    L = lab[..., 0]
    median_l = float(np.median(L[orig > 0])) if (orig > 0).any() else float(L.mean())
    median_l = max(median_l, 5.0)
    low, _ = _blur_masked(L, orig, max(1.5, 0.18 * nail_width))
    fine_base, _ = _blur_masked(L, orig, 1.0)
    detail = np.where(orig > 0, L - fine_base, 0.0)
    detail = cv2.GaussianBlur(detail, (0, 0), 0.5)
    relative = np.clip(low / median_l, 0.55, 1.5) ** finish.shading_gamma

    # Nail coordinates and the synthetic shading.
    t0 = float(t_all.min())
    t, s = _nail_coordinates((alpha > 0).astype(np.uint8), origin, u, t0, length * (1 + options.stretch), (ch, cw))
    light = np.asarray(options.light, np.float64)
    toward_light = 1.0 if perp @ light >= 0 else -1.0
    cylinder = 1.0 - finish.curvature * np.clip(s, -1.2, 1.2) ** 2
    gradient = 1.0 + finish.gradient * (0.5 - np.clip(t, 0, 1)) * 2
    lc, ac, bc = (float(v) for v in colour_lab)
    # The photo's exposure: a dim photo gets darker polish (a bare nail is ~L 72 in a well exposed photo).
    exposure = float(np.clip((median_l / 72.0) ** 0.5, 0.55, 1.1))
    shade = relative * cylinder * gradient * exposure
    L_out = (lc + finish.lightness) * shade + finish.detail * detail
    if finish.sparkle:
        seed = int(abs(x0 * 73856093 ^ y0 * 19349663)) % (2**32)
        L_out = L_out + finish.sparkle * _noise((ch, cw), seed)

    # Specular streak along the base -> tip axis, and a small glint near the base.
    along = _smoothstep((t - 0.10) / 0.25) * (1.0 - _smoothstep((t - 0.62) / 0.28))
    across = np.exp(-(((s - toward_light * finish.highlight_offset) / max(finish.highlight_width, 1e-3)) ** 2))
    streak = finish.highlight * along * across
    if finish.glint and sure:
        gt = np.exp(-(((t - 0.2) / 0.07) ** 2) - ((s - toward_light * 0.45) / 0.16) ** 2)
        streak = np.maximum(streak, finish.glint * gt)
    streak = np.clip(streak, 0, 1).astype(np.float32)
    target_l = 100.0 * (1 - finish.highlight_tint) + min(100.0, lc + 45.0) * finish.highlight_tint
    L_out = L_out + streak * (target_l - L_out)
    chroma = finish.chroma * (1.0 - streak * (1.0 - finish.highlight_tint)) * np.clip(shade, 0.75, 1.15)
    polish = np.stack([np.clip(L_out, 0, 100), ac * chroma, bc * chroma], axis=-1).astype(np.float32)
    rgb = np.clip(cv2.cvtColor(polish, cv2.COLOR_Lab2RGB), 0, 1) * 255.0

    # Composite; pixels with alpha 0 keep their exact bytes.
    a = alpha[..., None]
    region = out[y0:y1, x0:x1]
    mixed = region.astype(np.float32) * (1 - a) + rgb * a
    painted = alpha > 0
    region[painted] = np.clip(np.rint(mixed[painted]), 0, 255).astype(np.uint8)
    alpha_total[y0:y1, x0:x1] = np.maximum(alpha_total[y0:y1, x0:x1], alpha)
    return {"polygon": stretched.tolist(), "direction": [float(u[0]), float(u[1])],
            "axis_source": shape.source, "axis_confidence": round(shape.confidence, 3), "bbox": [x0, y0, cw, ch],
            "base": (pts[int(np.argmin(t_all))]).round(2).tolist(), "tip": (pts[int(np.argmax(t_all))]).round(2).tolist()}


# ----------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------


def render(image: np.ndarray, nails: dict | list, color: str | Iterable[int] = "#C8102E", finish: str | Finish = "glossy",
           *, options: RenderOptions | None = None, **overrides: Any) -> RenderResult:
    """Paint the nails of ``image`` (uint8 RGB H x W x 3) with ``color`` in ``finish``.

    ``nails``: a ``dataset.geometry`` dict (labels: ``{"nails": [{"polygon", "base", "tip", ...}]}``), a list
    of such nail dicts, or a list of :class:`ml.postprocess.Nail` (predictions). Nails without landmarks or
    a predicted direction are oriented from the photo. ``overrides``: :class:`RenderOptions` fields.
    Pixels outside the stretched nails are returned bit-identical.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 H x W x 3 RGB, got {image.dtype} {image.shape}")
    options = replace(options or RenderOptions(), **overrides)
    if isinstance(finish, str):
        try:
            finish = FINISHES[finish]
        except KeyError:
            raise ValueError(f"finish must be one of {', '.join(FINISHES)}, got {finish!r}") from None
    rgb = np.array(parse_color(color), np.float32).reshape(1, 1, 3) / 255.0
    colour_lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0, 0]
    everything = _all_nails_mask(image, nails)
    shapes = _as_shapes(image, nails, everything)
    out = image.copy()
    alpha = np.zeros(image.shape[:2], np.float32)
    info = []
    for shape in shapes:
        painted = _paint_nail(out, alpha, image, shape, colour_lab, finish, options)
        if painted is not None:
            info.append(painted)
    return RenderResult(out, alpha, info)


def side_by_side(before: np.ndarray, after: np.ndarray, max_width: int | None = None, gap: int = 8,
                 background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Before | after, scaled so the pair is at most ``max_width`` px wide (uint8 RGB)."""
    h, w = before.shape[:2]
    canvas = np.full((h, 2 * w + gap, 3), background, np.uint8)
    canvas[:, :w] = before
    canvas[:, w + gap:] = after
    if max_width and canvas.shape[1] > max_width:
        scale = max_width / canvas.shape[1]
        canvas = cv2.resize(canvas, (max_width, max(1, round(canvas.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return canvas
