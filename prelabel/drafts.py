"""Model drafts: predictions become an image's draft annotation, and reviewers decide what happens next.

Rules (the same versioning as ``labeling.annotations``: every change bumps ``Annotation.version`` by one
and is kept as an ``AnnotationRevision``, in one transaction):

* A draft is written as a revision with ``source="model"`` and ``model_version=<name>``, status ``draft``,
  no author, only while the annotation has **no human revision at all** and is unlabeled or a draft. The
  check runs under the annotation's row lock (``SELECT ... FOR UPDATE``; SQLite serialises writers), and
  the update is conditional on the version read there: a human save that raced it either came first (and
  the draft is skipped) or gets the usual 409 and keeps its labels. So a human edit is never overwritten
  by a later pre-labeling run; a newer model may replace an older model's untouched draft.
* The same prediction twice (same model, same geometry) writes nothing new.
* Reviewers decide on drafts of new uploads: accept (the draft is submitted into the normal review flow,
  as a human revision by the reviewer), send to annotation (optionally to one annotator), or reject the
  image (blurry, no nails...): the annotation becomes ``rejected`` with the reason, unassigned, so no
  queue hands it out. All three only while no human has worked on the image.

Nails keep their landmarks when their direction came from the predicted field or from the photo
(``Nail.direction_source`` "field" / "image"); a shape-only axis has no reliable sign and is left for the
annotator. A nail whose polygon fails the geometry rules is dropped (logged in the prediction's nails).

What the model proposed is a suggestion, not a label (``dataset.geometry``'s ``suggested`` marks): a draft
nail's finger carries ``suggested.finger`` = the nail's class confidence (mean probability of its finger
over the nail; 0 when the model gave a finger without probabilities), and its base/tip carry
``suggested.landmarks`` = the direction's confidence (``field_coherence`` for a field direction,
``orientation_confidence`` for one oriented from the photo). The annotator accepts them with one key (G) or
edits them; until then they count as missing. A binary-only model gives no finger: nothing is marked. The
pre-labeling job passes the photo: when the model's class or direction head trained, each draft nail's finger
and base/tip are then the label suggestions (``ml.label_suggestions``) that weigh the model's per-nail votes
(``ImagePrediction.votes``) with the nails' layout and the photo, and their marks the suggestions' confidences. The
nail's outline confidence (mean nail probability) has no place in the geometry: it stays with the
prediction's nails (``Prediction.nails[i]["confidence"]``, in the draft's order) for the page to show.

A draft nail whose outline confidence is under ``PROPOSE_BELOW`` (``prelabel/proposals.py``) is not shown as a nail
to fix but proposed to accept or reject with one key (issue #18; the annotation page's open call says which,
``api.OpenView``): the draft keeps it, and the page saves it only when the annotator accepts it.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.roles import ADMIN, REVIEWER, role_of
from dataset.geometry import SUGGESTED_FIELDS, as_confidence, confirm_field, normalize_geometry, validate_geometry
from labeling.annotations import assign_annotation
from labeling.models import Annotation, AnnotationRevision, Image
from labeling.photos import small_copy
from labeling.suggestions import RULE, suggest_on_small

from .models import Prediction

Source = AnnotationRevision.Source
S = Annotation.Status
LANDMARK_SOURCES = ("field", "image")
REJECT_REASONS = {"blurry": "blurry", "no_nails": "no nails visible", "not_a_hand": "not a hand", "duplicate": "duplicate",
                  "other": "other"}


class DraftError(Exception):
    status_code = 409


class NotAllowed(DraftError):
    status_code = 403


def direction_confidence(nail) -> float | None:
    """How sure the post-processing is of ``nail``'s base -> tip direction, in [0, 1]; None for a shape-only
    axis (no landmarks are drafted then)."""
    key = {"field": "field_coherence", "image": "orientation_confidence"}.get(nail.direction_source)
    value = nail.extra.get(key) if key else None
    return None if value is None else as_confidence(value, 4)


def nail_entry(nail) -> dict:
    """A post-processed ``ml.postprocess.Nail`` as the JSON kept with a prediction: its draft fields, the
    ``suggested`` marks of what the model proposed, and its confidences."""
    summary = nail.to_dict()
    keep = nail.direction_source in LANDMARK_SOURCES
    suggested = {}
    if nail.finger is not None:
        suggested["finger"] = summary["class_confidence"] or 0.0
    if keep:
        suggested["landmarks"] = direction_confidence(nail) or 0.0
    return {"polygon": summary["polygon"], "finger": nail.finger,
            "base": summary["base"] if keep else None, "tip": summary["tip"] if keep else None,
            "suggested": suggested, "confidence": summary["confidence"], "class_confidence": summary["class_confidence"],
            "direction_confidence": direction_confidence(nail), "direction_source": nail.direction_source,
            "area": summary["area"]}


def _draft_nail(entry: dict) -> dict:
    """The geometry nail of an entry (its ``suggested`` marks only when it has some)."""
    out = {key: entry[key] for key in ("polygon", "finger", "base", "tip")}
    if entry.get("suggested"):
        out["suggested"] = dict(entry["suggested"])
    return out


def nails_to_geometry(nails, width: int, height: int) -> tuple[dict, list[dict], list[dict]]:
    """``(geometry, kept, dropped)``: the draft geometry (valid, normalized), the nail entries it was made
    of (same order) and those dropped with the reason."""
    kept, dropped = [], []
    for nail in nails:
        entry = nail_entry(nail) if not isinstance(nail, dict) else dict(nail)
        candidate = _draft_nail(entry)
        report = validate_geometry({"nails": [candidate], "ignore": []}, width, height)
        if not report.ok and candidate["base"] is not None:
            entry.update(base=None, tip=None)  # landmarks off the polygon: keep the outline only
            entry["suggested"] = {k: v for k, v in (entry.get("suggested") or {}).items() if k != "landmarks"}
            candidate = _draft_nail(entry)
            report = validate_geometry({"nails": [candidate], "ignore": []}, width, height)
        if not report.ok:
            dropped.append({**entry, "reason": "; ".join(issue.message for issue in report.errors)})
            continue
        kept.append(entry)
    geometry = {"nails": [_draft_nail(e) for e in kept], "ignore": []}
    report = validate_geometry(geometry, width, height)
    if not report.ok:  # pragma: no cover  (each nail passed alone; the whole has no cross-nail errors)
        raise ValueError("; ".join(issue.message for issue in report.errors))
    return normalize_geometry(geometry), kept, dropped


def has_human_revision(annotation: Annotation) -> bool:
    return annotation.revisions.filter(source=Source.HUMAN).exists()


def write_draft(image: Image, geometry: dict, model_name: str, note: str = "") -> tuple[str, int | None]:
    """Write ``geometry`` as the image's model draft (see the module rules). Returns ``(draft_state,
    version)``: the version of the draft revision, or None when nothing may be written."""
    clean = normalize_geometry(geometry)
    name = model_name[:64]
    now = timezone.now()
    with transaction.atomic():
        annotation = Annotation.objects.select_for_update().get(image=image)
        if has_human_revision(annotation):
            return Prediction.DraftState.SKIPPED_HUMAN, None
        if annotation.status not in (S.UNLABELED, S.DRAFT):
            return Prediction.DraftState.SKIPPED_STATUS, None
        last = annotation.revisions.order_by("-version").first()
        if last is not None and last.source == Source.MODEL and last.model_version == name and last.geometry == clean \
                and last.version == annotation.version:
            return Prediction.DraftState.KEPT, last.version
        updated = Annotation.objects.filter(pk=annotation.pk, version=annotation.version).update(
            geometry=clean, version=F("version") + 1, status=S.DRAFT, updated_by=None, updated_at=now)
        if not updated:  # pragma: no cover  (the row is locked)
            return Prediction.DraftState.SKIPPED_HUMAN, None
        version = annotation.version + 1
        AnnotationRevision.objects.create(annotation=annotation, version=version, geometry=clean, status=S.DRAFT,
                                          source=Source.MODEL, model_version=name, author=None,
                                          note=(note or f"pre-labelled by {model_name}")[:500], created_at=now)
    return Prediction.DraftState.DRAFTED, version


def with_label_suggestions(entries: list[dict], photo, votes: list) -> list[dict]:
    """The nail entries with their finger and base/tip from ``ml.label_suggestions`` (the nails' layout on the
    hand, the photo, and the model's per-nail ``votes`` weighed together, one finger per nail of a hand), marked
    suggested with its confidences: on held-out people a weak model's class head alone names the right finger
    far less often than the suggestions that weigh its votes (``bench/complete_labels.py --model``)."""
    if not entries:
        return entries
    small, scale = small_copy(photo)
    suggestions = suggest_on_small([e["polygon"] for e in entries], [None] * len(entries), small, scale, votes)
    out = []
    for entry, suggestion in zip(entries, suggestions):
        entry = dict(entry, base=[round(v, 2) for v in suggestion.base], tip=[round(v, 2) for v in suggestion.tip],
                     label_source=RULE, direction_confidence=as_confidence(suggestion.direction_confidence, 4))
        entry["suggested"] = {"landmarks": as_confidence(suggestion.direction_confidence)}
        if suggestion.finger is not None:  # None: no basis at all (the nail keeps no finger)
            entry.update(finger=suggestion.finger, class_confidence=as_confidence(suggestion.confidence, 4))
            entry["suggested"]["finger"] = as_confidence(suggestion.confidence)
        else:
            entry.update(finger=None, class_confidence=None)
        out.append(entry)
    return out


def save_prediction(image: Image, model_version, result, *, job=None, write: bool = True, photo=None) -> Prediction:
    """Keep ``result`` (a ``training.serving.ImagePrediction``) as the image's prediction by ``model_version``
    and write its draft (unless ``write`` is False or the rules forbid it). With the ``photo`` (uint8 RGB) and
    the model's per-nail votes (a model whose class or direction head trained), the draft's fingers and
    base/tip are the label suggestions that weigh them (:func:`with_label_suggestions`)."""
    from .inference import probability_png

    nails = result.nails
    if photo is not None and result.votes:
        nails = with_label_suggestions([nail_entry(n) for n in nails], photo, result.votes)
    geometry, kept, dropped = nails_to_geometry(nails, image.width, image.height)
    png, ow, oh = probability_png(result.fg_prob)
    confidences = [e["confidence"] for e in kept]
    with transaction.atomic():
        if write:
            state, version = write_draft(image, geometry, model_version.name)
        else:
            state, version = Prediction.DraftState.SKIPPED_STATUS, None
        prediction, _ = Prediction.objects.update_or_create(image=image, model_version=model_version, defaults=dict(
            nails=kept + [{**d, "dropped": True} for d in dropped], geometry=geometry, nail_count=len(kept),
            confidence=sum(confidences) / len(confidences) if confidences else None,
            min_confidence=min(confidences) if confidences else None, uncertainty=result.uncertainty,
            overlay_png=png, overlay_width=ow, overlay_height=oh, input_size=list(result.input_size),
            seconds=result.seconds, draft_state=state, draft_version=version, job=job))
    return prediction


# --- reviewers' decisions on drafts --------------------------------------------------------------------------

def _check_reviewer(user) -> None:
    if role_of(user) not in (ADMIN, REVIEWER):
        raise NotAllowed("only reviewers and admins decide on model drafts")


def _locked_untouched(prediction: Prediction) -> Annotation:
    annotation = Annotation.objects.select_for_update().get(image_id=prediction.image_id)
    if has_human_revision(annotation):
        raise DraftError("a human has already worked on this image: review it on the review page instead")
    return annotation


def _decided(prediction: Prediction, user, state: str, reason: str = "") -> Prediction:
    Prediction.objects.filter(pk=prediction.pk).update(review_state=state, review_reason=reason[:2000], reviewed_by=user,
                                                       reviewed_at=timezone.now())
    prediction.refresh_from_db()
    return prediction


def confirmed_draft(geometry: dict) -> dict:
    """``geometry`` with every suggestion accepted (no ``suggested`` marks left)."""
    nails = []
    for nail in geometry.get("nails") or []:
        for name in SUGGESTED_FIELDS:
            nail = confirm_field(nail, name)
        nails.append(nail)
    return {**geometry, "nails": nails}


def accept_draft(prediction: Prediction, user) -> Prediction:
    """The draft goes into the human review flow as it is: submitted, by the reviewer, who thereby confirms
    the model's suggested fingers and landmarks (the revision is the reviewer's, not silent)."""
    _check_reviewer(user)
    now = timezone.now()
    with transaction.atomic():
        annotation = _locked_untouched(prediction)
        if prediction.draft_version is None or annotation.version != prediction.draft_version:
            raise DraftError("the image's labels are not this prediction's draft (a newer draft or no draft): reload")
        if not annotation.geometry.get("nails"):
            raise DraftError("the model found no nail, so there is nothing to accept: send it to annotation or reject the image")
        accepted = confirmed_draft(annotation.geometry)
        report = validate_geometry(accepted, prediction.image.width, prediction.image.height, require_complete=True)
        if not report.ok:
            raise DraftError("the draft is incomplete (" + "; ".join(i.message for i in report.errors[:3])
                             + "): send it to annotation instead")
        Annotation.objects.filter(pk=annotation.pk).update(geometry=accepted, status=S.SUBMITTED, version=F("version") + 1,
                                                           updated_by=user, updated_at=now)
        AnnotationRevision.objects.create(annotation=annotation, version=annotation.version + 1, geometry=accepted,
                                          status=S.SUBMITTED, source=Source.HUMAN, author=user, created_at=now,
                                          note=f"model draft of {prediction.model_version.name} accepted for review by {user.username}"[:500])
        return _decided(prediction, user, Prediction.ReviewState.ACCEPTED)


def send_to_annotation(prediction: Prediction, user, assignee=None) -> Prediction:
    """The draft stays a draft for annotators to correct (given to ``assignee`` when named)."""
    _check_reviewer(user)
    with transaction.atomic():
        annotation = _locked_untouched(prediction)
        if annotation.status not in (S.UNLABELED, S.DRAFT):
            raise DraftError(f"the image is {annotation.status}, not open for annotation")
        if assignee is not None:
            assign_annotation(prediction.image, assignee)
        return _decided(prediction, user, Prediction.ReviewState.SENT, f"assigned to {assignee.username}" if assignee else "")


def reject_image(prediction: Prediction, user, reason: str, comment: str = "") -> Prediction:
    """The image is unusable: the annotation becomes rejected with the reason, unassigned (no queue hands
    it out), as a revision by the reviewer."""
    _check_reviewer(user)
    label = REJECT_REASONS.get(reason, (reason or "").strip())
    text = f"image rejected: {label}" + (f" ({comment.strip()})" if comment and comment.strip() else "")
    if not label:
        raise DraftError("rejecting an image needs a reason (blurry, no nails...)")
    now = timezone.now()
    with transaction.atomic():
        annotation = _locked_untouched(prediction)
        Annotation.objects.filter(pk=annotation.pk).update(status=S.REJECTED, version=F("version") + 1, assignee=None,
                                                           reviewer=user, review_comment=text, reviewed_at=now,
                                                           updated_by=user, updated_at=now)
        AnnotationRevision.objects.create(annotation=annotation, version=annotation.version + 1, geometry=annotation.geometry,
                                          status=S.REJECTED, source=Source.HUMAN, author=user, note=text[:500], created_at=now)
        return _decided(prediction, user, Prediction.ReviewState.REJECTED, text)
