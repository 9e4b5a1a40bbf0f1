"""Validation and normalisation of one image's nail annotations.

Plain Python + Shapely; this module must never import Django.

Geometry of one image is a JSON-like dict::

    {"nails": [{"id": "client id (optional)", "polygon": [[x, y], ...],
                "finger": 1..10 | None, "base": [x, y] | None, "tip": [x, y] | None,
                "suggested": {"finger": c, "landmarks": c}}],   # optional
     "ignore": [[[x, y], ...], ...]}            # "ignore" is optional

``suggested`` marks the fields of a nail whose current values are unconfirmed suggestions (written by
``labeling/suggestions.py`` from ``ml.label_suggestions``), each with its confidence ``c`` in [0, 1]:
``finger`` for the finger class, ``landmarks`` for base and tip together. A field not in it is confirmed
(drawn or accepted by a human, or imported). A human edit of a field, or accepting its suggestion, removes
its entry; an empty ``{}`` is normalised away. Whatever trains or counts as done reads
``confirmed_labels`` (suggested fields count as missing); ``nail_is_complete`` is False while a field is
only suggested.

Coordinates are image pixels (x right, y down). Finger classes: 1-5 left
thumb..little, 6-10 right thumb..little (0 is background, never valid).

``validate_geometry`` never raises; every problem becomes a ``GeometryIssue``
with a stable ``rule`` string:

* structure: not_an_object, nails_not_a_list, ignore_not_a_list,
  nail_not_an_object, missing_field, unknown_field, polygon_not_a_list,
  bad_id (non-string or over 100 chars), bad_point (not a list of two numbers;
  bools are not numbers), not_finite (NaN, inf or an int too large for a float).
* polygons (nails and ignore regions alike): too_many_vertices (> 10 000),
  outside_image (a vertex beyond the image by more than ``tolerance``; shape
  checks are then skipped), too_few_vertices (< 3 distinct vertices once
  consecutive duplicates and a closing vertex are dropped), zero_area (all
  vertices collinear), self_intersecting (ring not simple).
* nails: too_many_nails (> 500), bad_finger (None or int 1..10),
  landmarks_incomplete (base and tip both given or both None),
  landmark_outside_nail (further than ``landmark_tolerance`` from the polygon),
  landmarks_equal; with ``require_complete``: finger_missing, landmarks_missing, and
  finger_unconfirmed / landmarks_unconfirmed (the field is only a suggestion: accept or edit it first).
* suggestions: suggested_not_an_object (``suggested`` is not an object), suggested_unknown_field (a key
  other than finger / landmarks), bad_confidence (not a finite number in [0, 1]; bools are not numbers),
  suggested_unset (the marked field is not set: finger None, or base / tip None).
* warnings: duplicate_finger (two nails of one image share a finger class).

``DRAWING_RULES`` are the rules a shape can break while an annotator is still drawing it (its outline or
its landmarks, not the structure of the JSON): a draft keeps such a nail or ignore region apart, flagged
with its problems (``labeling/annotations.py``); submitting needs every shape valid.

Coordinates are rounded to 2 decimals *before* checking, so what is validated
is exactly what ``normalize_geometry`` returns.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import shapely
from shapely.geometry import LinearRing, MultiPoint, Point, Polygon

FINGER_NAMES: dict[int, str] = {
    hand_offset + i + 1: f"{hand} {name}"
    for hand_offset, hand in ((0, "left"), (5, "right"))
    for i, name in enumerate(("thumb", "index", "middle", "ring", "little"))
}
MAX_VERTICES = 10_000
MAX_NAILS = 500
MAX_IGNORE = 500
MAX_ID_LENGTH = 100
DECIMALS = 2
TOP_KEYS = ("nails", "ignore")
NAIL_KEYS = ("id", "polygon", "finger", "base", "tip", "suggested")
SUGGESTED_FIELDS = ("finger", "landmarks")      # the keys of a nail's "suggested" marks
DRAWING_RULES = frozenset({"too_few_vertices", "zero_area", "self_intersecting", "outside_image",
                           "landmarks_incomplete", "landmark_outside_nail", "landmarks_equal"})


@dataclass(frozen=True)
class GeometryIssue:
    rule: str
    message: str
    nail: int | None = None
    ignore: int | None = None
    field: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GeometryReport:
    errors: list[GeometryIssue] = field(default_factory=list)
    warnings: list[GeometryIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"errors": [i.to_dict() for i in self.errors],
                "warnings": [i.to_dict() for i in self.warnings]}


class _Bad(ValueError):
    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


def _fmt(x: float, y: float) -> str:
    return f"({x}, {y})"


def _point(value) -> tuple[float, float]:
    """Parse ``[x, y]`` into rounded floats, or raise ``_Bad``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise _Bad("bad_point", f"expected [x, y] with two numbers, got {_short(value)}")
    try:
        x, y = (float(v) for v in value)
    except OverflowError:
        x = y = math.inf
    if not (math.isfinite(x) and math.isfinite(y)):
        raise _Bad("not_finite", f"coordinates must be finite numbers, got {_short(value)}")
    return round(x, DECIMALS) + 0.0, round(y, DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _dedupe(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Drop consecutive duplicate vertices and a closing vertex equal to the first."""
    out = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    while len(out) > 1 and out[-1] == out[0]:
        out.pop()
    return out


def _reporter(sink: list, label: str, **where):
    def add(rule: str, message: str, field: str | None = None) -> None:
        sink.append(GeometryIssue(rule, f"{label}: {message}", field=field, **where))
    return add


def _inside(p, width, height, margin) -> bool:
    return -margin <= p[0] <= width + margin and -margin <= p[1] <= height + margin


def _check_polygon(raw, width, height, tolerance, add) -> Polygon | None:
    """Validate one polygon (nail or ignore region); return it if usable."""
    if not isinstance(raw, list):
        add("polygon_not_a_list", f"polygon must be a list of [x, y] points, got {_short(raw)}", "polygon")
        return None
    if len(raw) > MAX_VERTICES:
        add("too_many_vertices", f"polygon has {len(raw)} vertices (max {MAX_VERTICES})", "polygon")
        return None
    points = []
    for index, raw_point in enumerate(raw):
        try:
            points.append(_point(raw_point))
        except _Bad as bad:  # report the first bad vertex only
            add(bad.rule, f"vertex {index + 1}: {bad}", "polygon")
            return None
    outside = [p for p in points if not _inside(p, width, height, tolerance)]
    if outside:
        add("outside_image", f"{len(outside)} vertex(es) outside the {width}x{height} image, "
                             f"e.g. {_fmt(*outside[0])}", "polygon")
        return None
    points = _dedupe(points)
    if len(points) < 3:
        add("too_few_vertices", f"polygon needs at least 3 distinct vertices, has {len(points)}", "polygon")
        return None
    if MultiPoint(points).convex_hull.area < 1e-6:
        add("zero_area", "polygon has zero area (all vertices are collinear)", "polygon")
        return None
    ring = LinearRing(points)
    if not ring.is_simple:
        found = re.search(r"\[(\S+) (\S+)\]", shapely.is_valid_reason(Polygon(ring)))
        near = f" near {_fmt(float(found[1]), float(found[2]))}" if found else ""
        add("self_intersecting", f"polygon crosses itself (self-intersection{near})", "polygon")
        return None
    return Polygon(ring)


def _check_nail(nail, index, width, height, opts, report) -> None:
    add = _reporter(report.errors, f"nail {index + 1}", nail=index)
    if not isinstance(nail, dict):
        add("nail_not_an_object", f"expected an object, got {_short(nail)}")
        return
    for key in nail:
        if key not in NAIL_KEYS:
            add("unknown_field", f"unknown field {key!r}", str(key))
    nail_id = nail.get("id")
    if nail_id is not None and not (isinstance(nail_id, str) and len(nail_id) <= MAX_ID_LENGTH):
        add("bad_id", f"id must be a string of at most {MAX_ID_LENGTH} characters", "id")
    if "polygon" not in nail:
        add("missing_field", "missing field 'polygon'", "polygon")
        polygon = None
    else:
        polygon = _check_polygon(nail["polygon"], width, height, opts["tolerance"], add)

    finger = nail.get("finger")
    if finger is None:
        if opts["require_complete"]:
            add("finger_missing", "finger class is missing", "finger")
    elif type(finger) is not int or finger not in FINGER_NAMES:
        add("bad_finger", f"finger must be an integer 1-10 or null, got {_short(finger)}", "finger")

    given = [key for key in ("base", "tip") if nail.get(key) is not None]
    if len(given) == 1:
        missing = "tip" if given == ["base"] else "base"
        add("landmarks_incomplete", f"{given[0]} is set but {missing} is not", missing)
    elif not given and opts["require_complete"]:
        add("landmarks_missing", "base and tip landmarks are missing")
    points = {}
    for key in given:
        try:
            points[key] = _point(nail[key])
        except _Bad as bad:
            add(bad.rule, f"{key}: {bad}", key)
    if polygon is not None:
        reach = opts["landmark_tolerance"]
        for key, p in points.items():  # cheap bounds test first: avoids float overflow on huge values
            if not _inside(p, width, height, opts["tolerance"] + reach) or polygon.distance(Point(p)) > reach:
                add("landmark_outside_nail", f"{key} {_fmt(*p)} is outside the nail polygon", key)
    if len(points) == 2 and math.dist(points["base"], points["tip"]) < 1e-6:
        add("landmarks_equal", f"base and tip are the same point {_fmt(*points['base'])}", "tip")
    _check_suggested(nail, opts, add)


def as_confidence(value, digits: int = 3) -> float:
    """A score as a suggestion's confidence: clamped to [0, 1], rounded (what is stored and shown)."""
    return round(min(1.0, max(0.0, float(value))), digits)


def is_confidence(value) -> bool:
    """A suggestion's confidence: a finite number in [0, 1] (not a bool)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return 0 <= value <= 1 and math.isfinite(float(value))


def _check_suggested(nail: dict, opts, add) -> None:
    """The ``suggested`` marks of one nail (rules in the module docstring)."""
    marks = nail.get("suggested")
    if marks is None:
        return
    if not isinstance(marks, dict):
        add("suggested_not_an_object", f"suggested must be an object like {{\"finger\": 0.8}}, got {_short(marks)}",
            "suggested")
        return
    for key, confidence in marks.items():
        if key not in SUGGESTED_FIELDS:
            add("suggested_unknown_field", f"suggested: unknown field {key!r} (only finger, landmarks)", "suggested")
            continue
        if not is_confidence(confidence):
            add("bad_confidence", f"suggested {key}: confidence must be a number in [0, 1], got {_short(confidence)}",
                "suggested")
        is_set = nail.get("finger") is not None if key == "finger" else (
            nail.get("base") is not None and nail.get("tip") is not None)
        if not is_set:
            add("suggested_unset", f"{key} is marked suggested but not set", "suggested")
        elif opts["require_complete"]:
            add(f"{key}_unconfirmed", f"{key} is only a suggestion: accept or edit it", key if key == "finger" else None)


def validate_geometry(geometry, width, height, *, require_complete: bool = False,
                      tolerance: float = 1.0, landmark_tolerance: float = 4.0) -> GeometryReport:
    """Check one image's geometry; never raises, returns errors and warnings."""
    report = GeometryReport()
    add = _reporter(report.errors, "geometry")
    if not isinstance(geometry, dict):
        add("not_an_object", f"expected an object with 'nails', got {_short(geometry)}")
        return report
    for key in geometry:
        if key not in TOP_KEYS:
            add("unknown_field", f"unknown top-level field {key!r}", str(key))
    nails, ignore = geometry.get("nails"), geometry.get("ignore")
    if "nails" not in geometry:
        add("missing_field", "missing field 'nails'", "nails")
    elif not isinstance(nails, list):
        add("nails_not_a_list", f"'nails' must be a list, got {_short(nails)}", "nails")
    elif len(nails) > MAX_NAILS:
        add("too_many_nails", f"{len(nails)} nails (max {MAX_NAILS})", "nails")
    else:
        opts = {"require_complete": require_complete, "tolerance": tolerance,
                "landmark_tolerance": landmark_tolerance}
        seen: dict[int, int] = {}
        for index, nail in enumerate(nails):
            _check_nail(nail, index, width, height, opts, report)
            finger = nail.get("finger") if isinstance(nail, dict) else None
            if type(finger) is int and finger in FINGER_NAMES:
                if finger in seen:
                    _reporter(report.warnings, f"nail {index + 1}", nail=index)(
                        "duplicate_finger", f"same finger as nail {seen[finger] + 1} "
                        f"({FINGER_NAMES[finger]}, finger {finger})", "finger")
                else:
                    seen[finger] = index
    if ignore is not None and not isinstance(ignore, list):
        add("ignore_not_a_list", f"'ignore' must be a list of polygons, got {_short(ignore)}", "ignore")
    elif ignore and len(ignore) > MAX_IGNORE:
        add("too_many_ignore", f"{len(ignore)} ignore regions (max {MAX_IGNORE})", "ignore")
    else:
        for index, region in enumerate(ignore or []):
            _check_polygon(region, width, height, tolerance,
                           _reporter(report.errors, f"ignore region {index + 1}", ignore=index))
    return report


def normalize_geometry(geometry: dict) -> dict:
    """Canonical form of geometry that passed ``validate_geometry`` (undefined otherwise)."""
    def ring(raw):
        return [list(p) for p in _dedupe([_point(p) for p in raw])]

    def landmark(value):
        return None if value is None else list(_point(value))

    nails = []
    for nail in geometry.get("nails") or []:
        out = {"id": nail["id"]} if isinstance(nail.get("id"), str) else {}
        finger = nail.get("finger")
        out.update(polygon=ring(nail["polygon"]), finger=None if finger is None else int(finger),
                   base=landmark(nail.get("base")), tip=landmark(nail.get("tip")))
        marks = nail.get("suggested") or {}
        if marks:
            out["suggested"] = {key: round(float(marks[key]), 3) + 0.0 for key in SUGGESTED_FIELDS if key in marks}
        nails.append(out)
    return {"nails": nails, "ignore": [ring(r) for r in geometry.get("ignore") or []]}


def empty_geometry() -> dict:
    return {"nails": [], "ignore": []}


def nail_is_complete(nail: dict) -> bool:
    """True when the nail has a confirmed finger class and both landmarks confirmed (not suggested)."""
    return isinstance(nail, dict) and all(v is not None for v in confirmed_labels(nail).values())


def suggested_marks(nail: dict) -> dict:
    """The nail's ``suggested`` marks, ``{}`` when it has none."""
    marks = nail.get("suggested") if isinstance(nail, dict) else None
    return marks if isinstance(marks, dict) else {}


def confirmed_labels(nail: dict) -> dict:
    """``{"finger", "base", "tip"}`` of a nail with every suggested field as None: what training data and
    completeness read (a suggestion is not a label until a human confirms it)."""
    marks = suggested_marks(nail)
    landmarks_confirmed = "landmarks" not in marks
    return {"finger": None if "finger" in marks else nail.get("finger"),
            "base": nail.get("base") if landmarks_confirmed else None,
            "tip": nail.get("tip") if landmarks_confirmed else None}


def confirmed_geometry(geometry: dict) -> dict:
    """A copy of (valid) geometry with every suggested field set to None and no marks: what formats that
    cannot carry the marks export (YOLO, LabelMe, CVAT; see docs/formats.md)."""
    nails = [{**{k: v for k, v in nail.items() if k != "suggested"}, **confirmed_labels(nail)}
             for nail in geometry.get("nails") or []]
    return {**geometry, "nails": nails}


def confirm_field(nail: dict, field: str) -> dict:
    """A copy of ``nail`` with the ``suggested`` mark of ``field`` ("finger" / "landmarks") removed."""
    marks = {k: v for k, v in suggested_marks(nail).items() if k != field}
    out = {k: v for k, v in nail.items() if k != "suggested"}
    if marks:
        out["suggested"] = marks
    return out
