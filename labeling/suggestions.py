"""Label suggestions in the product (issue #16): the tool's ghosts and the bulk ``complete_labels`` job.

``ml.label_suggestions.suggest_labels`` does the work (plain Python); this module feeds it an image's photo
and the human's known fields, and writes what it says into annotations:

The active model's per-nail votes (``labeling/extensions.py``'s vote providers: pre-labeling's, when the
model's class or direction head was trained) are weighed with the geometry and the photo, as far as
``NAILSET_MODEL_VOTE_WEIGHTS`` says (else ``SuggestionRules``' defaults).

* ``suggestions_for(image)``: per nail of the image's current labels, the suggestion (what
  ``GET /api/images/{id}/label-suggestions/`` answers and the annotation tool draws ghosted).
* ``complete_annotation(image, accept_above=P)``: fills the fields of each nail that are not set, or set
  only as a suggestion, and marks them ``suggested`` with their confidence (``dataset/geometry.py``); with
  ``accept_above`` a field whose confidence is >= P is written confirmed instead. A confirmed field (a
  human's, or imported) is never changed and is given to the suggester as a constraint. The change is the
  annotation's next version (a conditional UPDATE on the version read, like ``annotations.save_annotation``)
  with an ``AnnotationRevision`` of source ``suggestion`` whose note says what was suggested or accepted and
  by which rule. The status stays, except that accepted labels that got fields accepted by the rule go
  back to ``submitted`` for a reviewer; labels with suggested fields count as incomplete
  (``labeling.queue``), so annotators find them in the incomplete-labels queue.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from dataset.geometry import (DRAWING_RULES, MAX_NAILS, as_confidence, confirm_field, confirmed_labels,
                              normalize_geometry, suggested_marks, validate_geometry)
from ml.label_suggestions import SuggestionRules, suggest_labels

from .extensions import votes_for
from .models import Annotation, AnnotationRevision, Image
from .photos import photo_of

RULE = "ml.label_suggestions"       # named in revision notes: which rule wrote the fields
MAX_TRIES = 3                       # a human saving meanwhile: compute again from their version


def read_photo(image: Image) -> tuple[np.ndarray, np.ndarray, float] | None:
    """``(rgb, small, scale)`` of the stored photo (read-only, from labeling/photos.py's LRU: the page asks for
    suggestions after every autosave), or None when its file is missing (suggestions then use the polygons
    alone)."""
    try:
        return photo_of(image)
    except (FileNotFoundError, ValueError):
        return None


class BadNails(ValueError):
    """The request's ``nails`` (the page's labels) are not a list of nails."""


def page_nails(raw, width: int, height: int) -> list[dict]:
    """The page's nails of a request, normalized, without those that break a drawing rule (an outline still
    being drawn); BadNails names the first problem of anything that is not a nail."""
    if not isinstance(raw, list):
        raise BadNails("'nails' must be a list of the page's nails ({polygon, finger, base, tip, suggested})")
    if len(raw) > MAX_NAILS:
        raise BadNails(f"too many nails: {len(raw)}, at most {MAX_NAILS}")
    report = validate_geometry({"nails": raw, "ignore": []}, width, height)
    drawing = {issue.nail for issue in report.errors if issue.rule in DRAWING_RULES}
    for issue in report.errors:
        if issue.rule not in DRAWING_RULES and issue.nail not in drawing:
            raise BadNails(issue.message)
    return normalize_geometry({"nails": [n for i, n in enumerate(raw) if i not in drawing], "ignore": []})["nails"]


def _scaled(point, scale: float):
    return None if point is None else [float(point[0]) * scale, float(point[1]) * scale]


VOTE_WEIGHTS = {"finger": "model_weight", "digit": "model_digit_weight", "direction": "model_direction_weight"}


def suggestion_rules() -> SuggestionRules | None:
    """The suggestions' rules: the defaults, with the model-vote weights of ``NAILSET_MODEL_VOTE_WEIGHTS``
    (None when it sets none)."""
    weights = getattr(settings, "NAILSET_MODEL_VOTE_WEIGHTS", None) or {}
    return SuggestionRules(**{VOTE_WEIGHTS[k]: v for k, v in weights.items()}) if weights else None


def suggest_on_small(polygons: list, known: list, small: np.ndarray, scale: float, model_votes=None) -> list:
    """``ml.label_suggestions.suggest_labels`` on the photo's small copy (``scale`` = its size / the photo's:
    a 12 MP photo in Lab costs ~0.6 s), everything in and out in the photo's pixels, with
    :func:`suggestion_rules`."""
    suggestions = suggest_labels(
        [(np.asarray(p, np.float64) * scale).tolist() for p in polygons], small,
        known=[{**k, "base": _scaled(k.get("base"), scale), "tip": _scaled(k.get("tip"), scale)} if k else k
               for k in known], model_votes=model_votes, rules=suggestion_rules())
    return [replace(s, base=[round(float(v) / scale, 2) for v in s.base], tip=[round(float(v) / scale, 2) for v in s.tip])
            for s in suggestions]


def _suggest(image: Image, geometry: dict, photo=None):
    nails = geometry.get("nails") or []
    if not nails:
        return []
    photo = read_photo(image) if photo is None else photo
    polygons, known = [n["polygon"] for n in nails], [confirmed_labels(n) for n in nails]
    if photo is None:
        return suggest_labels(polygons, None, known=known)
    rgb, small, scale = photo
    votes = votes_for(image, rgb, polygons)  # a trained model's, when active
    return suggest_on_small(polygons, known, small, scale, votes)


def suggestions_for(image: Image, nails: list[dict] | None = None) -> dict:
    """``{"image", "version", "nails": [{"index", "id", "missing", "suggested", "suggestion"}]}`` for the
    image's current labels, or for ``nails`` (the page's, from :func:`page_nails`: what the annotator sees, saved
    or not; ``version`` is still the saved one's): ``missing`` lists the fields not confirmed (finger,
    landmarks), ``suggested`` the nail's marks, ``suggestion`` the suggester's dict (``NailSuggestion.to_dict``)."""
    annotation = Annotation.objects.get(image=image)
    geometry = (annotation.geometry or {}) if nails is None else {"nails": nails}
    nails = geometry.get("nails") or []
    out = []
    for index, (nail, suggestion) in enumerate(zip(nails, _suggest(image, geometry))):
        known = confirmed_labels(nail)
        missing = [f for f, unset in (("finger", known["finger"] is None), ("landmarks", known["base"] is None)) if unset]
        out.append({"index": index, "id": nail.get("id"), "missing": missing, "suggested": suggested_marks(nail),
                    "suggestion": suggestion.to_dict()})
    return {"image": image.pk, "version": annotation.version, "nails": out}


@dataclass
class Completion:
    """What ``complete_annotation`` did to one image. Counts are of nail fields (finger, landmarks)."""

    image: int
    changed: bool = False
    version: int | None = None
    suggested: Counter = field(default_factory=Counter)   # field -> written as suggestions
    accepted: Counter = field(default_factory=Counter)    # field -> written confirmed (>= accept_above)
    skipped: Counter = field(default_factory=Counter)     # reason -> fields left alone
    note: str = ""

    def to_dict(self) -> dict:
        return {"image": self.image, "changed": self.changed, "version": self.version, "suggested": dict(self.suggested),
                "accepted": dict(self.accepted), "skipped": dict(self.skipped), "note": self.note}


def _fill(nail: dict, suggestion, accept_above: float | None, width: int, height: int, done: Completion) -> dict:
    """The nail with its unconfirmed fields filled from ``suggestion`` (a NailSuggestion)."""
    marks = suggested_marks(nail)
    out = dict(nail)
    for name in ("finger", "landmarks"):
        is_set = nail.get("finger") is not None if name == "finger" else nail.get("base") is not None
        if is_set and name not in marks:
            done.skipped[f"{name} confirmed"] += 1
            continue
        if name == "finger":
            value, confidence = {"finger": suggestion.finger}, suggestion.confidence
            if suggestion.finger is None:
                done.skipped["finger: no suggestion"] += 1
                continue
        else:
            value, confidence = {"base": list(suggestion.base), "tip": list(suggestion.tip)}, suggestion.direction_confidence
        confidence = as_confidence(confidence)  # as stored and shown: the rule compares this
        candidate = {**out, **value, "suggested": {**suggested_marks(out), name: confidence}}
        if accept_above is not None and confidence >= accept_above:
            candidate = confirm_field(candidate, name)
        report = validate_geometry({"nails": [candidate]}, width, height)
        if not report.ok:
            done.skipped[f"{name}: {report.errors[0].rule}"] += 1
            continue
        candidate = normalize_geometry({"nails": [candidate]})["nails"][0]
        before = normalize_geometry({"nails": [out]})["nails"][0]
        if candidate == before:
            done.skipped[f"{name}: suggestion unchanged"] += 1
            continue
        (done.accepted if name not in suggested_marks(candidate) else done.suggested)[name] += 1
        out = candidate
    return out


def _note(done: Completion, accept_above: float | None) -> str:
    def fields(counter):
        return ", ".join(f"{name} on {n} nail(s)" for name, n in sorted(counter.items()))
    parts = []
    if done.suggested:
        parts.append(f"suggested {fields(done.suggested)}")
    if done.accepted:
        parts.append(f"accepted {fields(done.accepted)} with confidence >= {accept_above} (--accept-above)")
    return f"complete_labels by {RULE}: " + "; ".join(parts)


def complete_annotation(image: Image, *, accept_above: float | None = None) -> Completion:
    """Fill the image's unconfirmed nail fields from the suggester (see the module docstring)."""
    photo = None
    for _ in range(MAX_TRIES):
        done = Completion(image.pk)
        annotation = Annotation.objects.get(image=image)
        geometry = annotation.geometry or {}
        nails = geometry.get("nails") or []
        if not nails:
            done.skipped["no nails"] += 1
            return done
        photo = read_photo(image) if photo is None else photo
        filled = [_fill(nail, s, accept_above, image.width, image.height, done)
                  for nail, s in zip(nails, _suggest(image, geometry, photo))]
        if not (done.suggested or done.accepted):
            return done
        clean = normalize_geometry({"nails": filled, "ignore": geometry.get("ignore") or []})
        status = annotation.status
        if status == Annotation.Status.ACCEPTED and done.accepted:
            status = Annotation.Status.SUBMITTED  # machine-confirmed fields: a reviewer looks again
        done.note = _note(done, accept_above)
        now = timezone.now()
        with transaction.atomic():
            if not Annotation.objects.filter(pk=annotation.pk, version=annotation.version).update(
                    geometry=clean, version=F("version") + 1, status=status, updated_by=None, updated_at=now):
                continue  # saved meanwhile: start again from the new version
            AnnotationRevision.objects.create(
                annotation=annotation, version=annotation.version + 1, geometry=clean,
                invalid_shapes=annotation.invalid_shapes, status=status, source=AnnotationRevision.Source.SUGGESTION,
                author=None, note=done.note[:500], created_at=now)
        done.changed, done.version = True, annotation.version + 1
        return done
    done = Completion(image.pk)
    done.skipped["changed while computing"] += 1
    return done
