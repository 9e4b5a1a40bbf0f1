"""Geometry helpers of importers: coordinates checked finite, nails built (``make_nail``), polygons that touch
or cross themselves repaired (``repair_ring``, ``finish_geometry``), and base / tip landmarks given to the nail
they belong to (``PendingNail``, ``assign_landmarks``).

Plain Python + Shapely; this package must never import Django.
"""
from __future__ import annotations

import math

from dataset.geometry import MAX_ID_LENGTH, normalize_geometry

from .labels import normalize_label

def finite_point(value) -> list[float] | None:
    """[x, y] as floats, or None when not two finite numbers."""
    try:
        x, y = value
        x, y = float(x), float(y)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(value[0], bool) or isinstance(value[1], bool):
        return None
    return [x, y] if math.isfinite(x) and math.isfinite(y) else None


def finite_points(values) -> list[list[float]] | None:
    """A list of [x, y] floats, or None when any vertex is not two finite numbers."""
    if not isinstance(values, (list, tuple)):
        return None
    out = []
    for value in values:
        point = finite_point(value)
        if point is None:
            return None
        out.append(point)
    return out


def flat_to_points(flat) -> list[list[float]] | None:
    """COCO / YOLO flat [x1, y1, x2, y2, ...] -> [[x, y], ...] (None if malformed)."""
    if not isinstance(flat, (list, tuple)) or len(flat) % 2:
        return None
    return finite_points([flat[i:i + 2] for i in range(0, len(flat), 2)])


def shoelace_area(points) -> float:
    n = len(points)
    return abs(sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
                   for i in range(n))) / 2.0


def make_nail(polygon, finger, base=None, tip=None, nail_id=None, suggested=None) -> dict:
    nail = {"polygon": polygon, "finger": finger, "base": base, "tip": tip}
    if suggested:
        nail["suggested"] = suggested
    if isinstance(nail_id, str) and nail_id and len(nail_id) <= MAX_ID_LENGTH:
        nail = {"id": nail_id, **nail}
    return nail


def repair_ring(points: list) -> list | None:
    """A simple ring for a polygon that touches or crosses itself, or None when it cannot be repaired.

    ``points`` are normalised (rounded, no repeated consecutive vertices). The polygon is
    made valid (shapely.make_valid); spikes and pinches (a vertex visited twice, e.g. a
    trace around a mask that touches itself) vanish. When that leaves several parts, the
    largest is kept if it holds at least 90 % of the area; holes are dropped. The result is
    rounded like the input and must be a simple ring, else None.
    """
    import shapely
    from shapely.geometry import LinearRing, Polygon
    try:
        if len(points) < 3 or LinearRing(points).is_simple:
            return None
        fixed = shapely.make_valid(Polygon(points))
    except (ValueError, TypeError, shapely.errors.ShapelyError):
        return None
    parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
    parts = [q for g in parts for q in getattr(g, "geoms", [g]) if q.area > 0]
    total = sum(q.area for q in parts)
    if not parts or max(q.area for q in parts) < 0.9 * total:
        return None
    best = max(parts, key=lambda q: q.area)
    ring = normalize_geometry({"nails": [], "ignore": [[list(c) for c in best.exterior.coords]]})["ignore"][0]
    try:
        return ring if len(ring) >= 3 and LinearRing(ring).is_simple and Polygon(ring).area > 0 else None
    except ValueError:
        return None


def finish_geometry(nails: list[dict], ignore: list, warn=None, repair: bool = True) -> dict:
    """Normalised geometry dict (rounded to dataset.geometry.DECIMALS, duplicate vertices dropped).

    With ``repair``, polygons that touch or cross themselves are repaired with ``repair_ring``
    (each repair is a warning); the rest is left for ``validate_geometry`` to judge.
    """
    geometry = normalize_geometry({"nails": nails, "ignore": ignore})
    if repair:
        rings = [(f"nail {i + 1}", nail, "polygon") for i, nail in enumerate(geometry["nails"])]
        rings += [(f"ignore region {i + 1}", geometry["ignore"], i) for i in range(len(geometry["ignore"]))]
        for label, owner, key in rings:
            before = owner[key]
            fixed = repair_ring(before)
            if fixed is not None:
                owner[key] = fixed
                if warn:
                    warn(f"{label}: the polygon touched or crossed itself; repaired "
                         f"({len(before)} -> {len(fixed)} vertices, area {shoelace_area(before):g} -> "
                         f"{shoelace_area(fixed):g} px)")
    return geometry


class PendingNail:
    """A nail polygon waiting for its landmarks (LabelMe, CVAT)."""

    def __init__(self, polygon, finger, label: str, group=None, nail_id=None):
        self.polygon, self.finger, self.label, self.group, self.id = polygon, finger, label, group, nail_id
        self.base = self.tip = None
        self._shape = None

    def shape(self):
        if self._shape is None:
            from shapely.geometry import Polygon
            try:
                shape = Polygon(self.polygon)
                self._shape = shape if shape.is_valid else shape.buffer(0)
            except (ValueError, TypeError):
                self._shape = False
        return self._shape


def assign_landmarks(nails: list[PendingNail], landmarks: list[tuple], warn, reach: float = 4.0) -> None:
    """Give each landmark ``(kind, owner_label, [x, y], group)`` to one nail.

    Candidates: nails of ``owner_label`` when given, narrowed to the landmark's
    group when some candidates share it. The nail whose polygon contains the point
    wins (several: the smallest); otherwise the nearest within ``reach`` pixels.
    A second base (tip) for one nail keeps the first; a nail left with only one of
    base / tip loses it. Every such case is a warning.
    """
    from shapely.geometry import Point
    for kind, owner, point, group in landmarks:
        candidates = [n for n in nails if owner is None or normalize_label(n.label) == owner]
        if group is not None and any(n.group == group for n in candidates):
            candidates = [n for n in candidates if n.group == group]
        where = Point(point)
        scored = []
        for nail in candidates:
            shape = nail.shape()
            if shape:
                scored.append((shape.distance(where), shape.area, nail))
        inside = [s for s in scored if s[0] == 0]
        near = sorted(inside, key=lambda s: s[1]) or sorted((s for s in scored if s[0] <= reach), key=lambda s: s[0])
        label = f"{kind} at ({point[0]:g}, {point[1]:g})"
        if not near:
            warn(f"{label} is not inside any nail polygon; skipped")
            continue
        nail = near[0][2]
        if getattr(nail, kind) is not None:
            warn(f"{label}: the nail already has a {kind}; the extra one was skipped")
            continue
        setattr(nail, kind, point)
    for nail in nails:
        if (nail.base is None) != (nail.tip is None):
            missing = "tip" if nail.tip is None else "base"
            warn(f"nail {nail.label!r} has no {missing}; its {'base' if missing == 'tip' else 'tip'} was dropped")
            nail.base = nail.tip = None


def nails_to_dicts(nails: list[PendingNail]) -> list[dict]:
    return [make_nail(n.polygon, n.finger, n.base, n.tip, n.id) for n in nails]
