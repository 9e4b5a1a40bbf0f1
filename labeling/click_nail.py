"""Click a nail, get the nail (issue #18): ``POST /api/images/{id}/click-nail/`` in the product.

``ml.click_segmentation.segment_click`` does the work (plain Python); this module checks the points, takes
the decoded photo from labeling/photos.py's small LRU (the next clicks on an image skip the decoding), asks the registered
foreground provider (``labeling/extensions.py``; pre-labeling registers the active model's) for a
probability map, and gives the new nail its finger and base/tip from ``ml.label_suggestions`` run on the
image's nails plus the new one (the others' confirmed fields as constraints) and, with a model's probability
map, the nails the model sees that are not drawn yet (``ml.click_segmentation.model_context_nails``: read as
unlabelled nails, so the first nail clicked on a hand is placed in the whole hand's layout), weighing the
active model's per-nail votes when a vote provider has them (the same network run as the probability map), as
the tool's label suggestions do.

The image's nails are the page's when the request sends them (``"nails"``: the labels as the annotator sees
them, saved or not; the page sends them with every click, since its autosave waits 2.5 s after the last edit
and a quick annotator clicks the next nail before it), else the saved ones. A sent nail that breaks a drawing
rule (still being drawn) is left out of the context; one that is not a nail at all (not an object, a polygon of
non-numbers) is answered 400, like bad points (``labeling.suggestions.page_nails``).

Answer: ``{"nail": {"polygon", "finger", "base", "tip", "suggested": {"finger": c, "landmarks": c}},
"confidence", "source": "model" | "image", "model", "suggestion"}``, ``nail`` null when the click found
nothing. The nail's finger and base/tip are suggestions (marked ``suggested`` as ``complete_labels`` marks
them, ``dataset/geometry.py``); the tool shows them with the proposal, and its Enter accepts the nail as shown,
its finger and base/tip confirmed (labeling/static/labeling/click.js). Nothing is saved here.
"""
from __future__ import annotations

import math

from dataset.geometry import as_confidence, confirmed_labels
from ml.click_segmentation import NoNail, model_context_nails, nail_size_from_polygons, segment_click

from . import extensions
from .models import Image
from .photos import photo_of
from .suggestions import BadNails, page_nails, suggest_on_small

MAX_POINTS = 24                 # clicks on one proposal (positive and negative together)


class BadPoints(ValueError):
    """The request's points are not a list of ``[x, y, 1 | 0]`` inside the image with a positive one."""


def parse_points(raw, width: int, height: int) -> list[tuple[float, float, int]]:
    """The points of a request, checked; BadPoints names the first problem."""
    if not isinstance(raw, list):
        raise BadPoints("'points' must be a list of [x, y, label] (label 1: inside the nail, 0: outside it)")
    if not raw:
        raise BadPoints("'points' is empty: click inside a nail")
    if len(raw) > MAX_POINTS:
        raise BadPoints(f"too many points: {len(raw)}, at most {MAX_POINTS}")
    points = []
    for index, point in enumerate(raw):
        if not isinstance(point, list) or len(point) != 3:
            raise BadPoints(f"point {index} must be [x, y, label], got {str(point)[:40]}")
        x, y, label = point
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in (x, y)):
            raise BadPoints(f"point {index}: x and y must be numbers (image pixels)")
        if isinstance(label, bool) or label not in (0, 1):
            raise BadPoints(f"point {index}: label must be 1 (inside the nail) or 0 (outside it), got {str(label)[:20]}")
        if not (0 <= x <= width and 0 <= y <= height):
            raise BadPoints(f"point {index} ({x:g}, {y:g}) is outside the {width}x{height} image")
        points.append((float(x), float(y), int(label)))
    if not any(label == 1 for _, _, label in points):
        raise BadPoints("no positive point: at least one point must be inside the nail (label 1)")
    return points


def click_nail(image: Image, raw_points, geometry: dict, raw_nails=None) -> dict:
    """The proposal for the clicks (see the module docstring) on an image whose saved labels are ``geometry``
    (the caller has the annotation at hand: its permission check read it); ``raw_nails``: the page's nails, used
    in place of the saved ones when given. Raises BadPoints, BadNails, FileNotFoundError."""
    points = parse_points(raw_points, image.width, image.height)
    if raw_nails is not None:
        geometry = {"nails": page_nails(raw_nails, image.width, image.height)}
    rgb, small, scale = photo_of(image)
    if rgb.shape[:2] != (image.height, image.width):
        raise FileNotFoundError(f"the stored photo is {rgb.shape[1]}x{rgb.shape[0]}, not {image.width}x{image.height}")
    nails = (geometry or {}).get("nails") or []
    polygons = [n["polygon"] for n in nails if len(n.get("polygon") or []) >= 3]
    provided = extensions.foreground_for(image, rgb)
    fg_prob, model = provided if provided is not None else (None, None)
    try:
        result = segment_click(rgb, points, fg_prob=fg_prob, nail_size=nail_size_from_polygons(polygons))
    except NoNail as exc:
        raise BadPoints(str(exc)) from exc
    answer = {"nail": None, "confidence": result.confidence, "source": result.source, "model": model,
              "suggestion": None}
    if not result.polygon:
        answer["detail"] = "no nail found at this click: click nearer its middle, or draw it (N)"
        return answer
    known = [confirmed_labels(n) for n in nails if len(n.get("polygon") or []) >= 3]
    with_new = polygons + [result.polygon]
    # With a model, the nails it sees that are not drawn yet are read too (as unlabelled nails): the first
    # nail clicked on a hand gets its finger from the whole hand's layout, not from itself alone.
    unseen = model_context_nails(fg_prob, with_new) if fg_prob is not None else []
    everything = with_new + unseen
    votes = extensions.votes_for(image, rgb, everything)  # None without an active model whose heads trained
    suggestion = suggest_on_small(everything, known + [None] * (1 + len(unseen)), small, scale, votes)[len(polygons)]
    nail = {"polygon": result.polygon, "finger": suggestion.finger, "base": suggestion.base,
            "tip": suggestion.tip, "suggested": {}}
    if suggestion.finger is not None:
        nail["suggested"]["finger"] = as_confidence(suggestion.confidence)
    nail["suggested"]["landmarks"] = as_confidence(suggestion.direction_confidence)
    answer["nail"] = nail
    answer["suggestion"] = {**suggestion.to_dict(), "base": nail["base"], "tip": nail["tip"]}
    return answer


