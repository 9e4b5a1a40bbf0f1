"""Correction metrics: what humans changed in a model's draft before finishing an image, and how long it took.

**Comparison** (``compare_geometries``, plain Python + Shapely, no Django): draft nails are matched to
final nails greedily by polygon IoU (highest first, at least ``MATCH_IOU`` = 0.1). Per matched pair:

* ``iou``: polygon IoU (Shapely areas, exact);
* vertices ``moved`` / ``added`` / ``removed``: the two rings are aligned (rotated to a vertex they share,
  then an edit-distance alignment where keeping a vertex costs 0 and moving, inserting or deleting one
  costs 1): a substitution is a moved vertex, an insertion an added one, a deletion a removed one. Two
  vertices are the same when they agree within 0.011 px (coordinates are stored with 2 decimals). This is
  what the annotation tool's edits are (drag, insert on an edge, delete), counted exactly;
* ``class_changed``: the finger differs (a finger set on a draft nail without one counts as changed);
* landmark displacement: base and tip each in pixels, and as a share of the nail's length (the final
  base-to-tip distance; without landmarks the long side of the polygon's minimum rotated rectangle);
  a landmark set or cleared by the human is counted as ``landmarks_added`` / ``landmarks_removed``;
* unmatched draft nails are ``deleted``, unmatched final nails ``added``.

**Outcome** of an image: ``unchanged`` (no nail added or deleted, every matched nail identical: no vertex
edit, same finger, landmarks within 0.011 px, and the same ignore regions); ``minor`` (no nail added or
deleted, no finger changed, no landmark set or cleared, every matched nail with IoU >= 0.9 and its
landmarks moved by at most 10 % of its length); ``major`` otherwise. Images finished without a model
draft get ``no_draft`` (they give the "without a draft" time).

**Records** (``collect_corrections``, Django): one ``CorrectionRecord`` per image that a human finished,
i.e. whose first human revision with status submitted or accepted exists. The draft is the last model
revision before the first human revision (what the annotator opened). Time to submit: from the
annotator's last ``OpenEvent`` on the image at or before their first save of it (the session in which
they started working) to that first submitted revision. It is wall time, not active time: a break in the
middle counts; the dashboard reports medians. No open event (labels from an import, a reviewer accepting a
draft, a page opened before the draft existed) -> no time. Records are collected on demand: by the
metrics page and API, and at the end of each pre-labeling job; collecting twice changes nothing.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from shapely.geometry import Polygon

MATCH_IOU = 0.1
SAME_PX = 0.011
MINOR_IOU = 0.9
MINOR_LANDMARK_SHARE = 0.1


# --- geometry comparison (pure) -----------------------------------------------------------------------------

def _polygon(ring) -> Polygon:
    poly = Polygon([tuple(p) for p in ring])
    return poly if poly.is_valid else poly.buffer(0)


def polygon_iou(a, b) -> float:
    pa, pb = _polygon(a), _polygon(b)
    union = pa.union(pb).area
    return 0.0 if union <= 0 else float(pa.intersection(pb).area / union)


def _same(p, q, tol: float = SAME_PX) -> bool:
    return abs(p[0] - q[0]) <= tol and abs(p[1] - q[1]) <= tol


def _dist(p, q) -> float:
    return math.hypot(p[0] - q[0], p[1] - q[1])


@dataclass
class VertexEdits:
    moved: int = 0
    added: int = 0
    removed: int = 0
    shift_px: float = 0.0  # mean displacement of the moved vertices

    @property
    def total(self) -> int:
        return self.moved + self.added + self.removed


def vertex_edits(draft, final, tol: float = SAME_PX) -> VertexEdits:
    """How the ring ``final`` was made from ``draft``: vertices moved, added, removed (see the module)."""
    a, b = [tuple(p) for p in draft], [tuple(p) for p in final]
    if not a or not b:
        return VertexEdits(added=len(b), removed=len(a))
    anchor = next(((i, j) for i, p in enumerate(a) for j, q in enumerate(b) if _same(p, q, tol)), None)
    if anchor is None:  # every vertex changed: pair them in ring order from the best rotation
        n, m = len(a), len(b)
        k = min(n, m)
        best = min(range(m), key=lambda r: sum(_dist(a[i], b[(i + r) % m]) for i in range(k)))
        shift = sum(_dist(a[i], b[(i + best) % m]) for i in range(k)) / k
        return VertexEdits(moved=k, added=max(0, m - n), removed=max(0, n - m), shift_px=shift)
    i0, j0 = anchor
    a, b = a[i0:] + a[:i0], b[j0:] + b[:j0]
    n, m = len(a), len(b)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i
    for j in range(1, m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = 0 if _same(a[i - 1], b[j - 1], tol) else 1
            cost[i][j] = min(cost[i - 1][j - 1] + sub, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    edits, shifts = VertexEdits(), []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            sub = 0 if _same(a[i - 1], b[j - 1], tol) else 1
            if cost[i][j] == cost[i - 1][j - 1] + sub:
                if sub:
                    edits.moved += 1
                    shifts.append(_dist(a[i - 1], b[j - 1]))
                i, j = i - 1, j - 1
                continue
        if i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            edits.removed += 1
            i -= 1
        else:
            edits.added += 1
            j -= 1
    edits.shift_px = sum(shifts) / len(shifts) if shifts else 0.0
    return edits


def nail_length(nail: dict) -> float:
    """Base-to-tip distance, or the long side of the polygon's minimum rotated rectangle."""
    if nail.get("base") is not None and nail.get("tip") is not None:
        length = _dist(nail["base"], nail["tip"])
        if length > 0:
            return length
    rect = _polygon(nail["polygon"]).minimum_rotated_rectangle
    coords = list(rect.exterior.coords) if hasattr(rect, "exterior") else []
    if len(coords) < 3:
        return 0.0
    return max(_dist(coords[0], coords[1]), _dist(coords[1], coords[2]))


def match_nails(draft_nails: list, final_nails: list, min_iou: float = MATCH_IOU) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by polygon IoU, highest first: ``[(draft index, final index, iou)]``."""
    pairs = []
    for i, d in enumerate(draft_nails):
        for j, f in enumerate(final_nails):
            iou = polygon_iou(d["polygon"], f["polygon"])
            if iou >= min_iou:
                pairs.append((iou, i, j))
    used_d, used_f, matches = set(), set(), []
    for iou, i, j in sorted(pairs, key=lambda t: (-t[0], t[1], t[2])):
        if i in used_d or j in used_f:
            continue
        used_d.add(i)
        used_f.add(j)
        matches.append((i, j, iou))
    return sorted(matches)


def compare_nail(draft: dict, final: dict) -> dict:
    edits = vertex_edits(draft["polygon"], final["polygon"])
    iou = 1.0 if edits.total == 0 else polygon_iou(draft["polygon"], final["polygon"])
    length = nail_length(final) or nail_length(draft)
    entry = {"iou": round(iou, 4), "vertices_moved": edits.moved, "vertices_added": edits.added,
             "vertices_removed": edits.removed, "vertex_shift_px": round(edits.shift_px, 2),
             "finger_draft": draft.get("finger"), "finger_final": final.get("finger"),
             "class_changed": draft.get("finger") != final.get("finger"), "nail_length_px": round(length, 2),
             "landmarks_added": 0, "landmarks_removed": 0}
    shares = []
    for key in ("base", "tip"):
        d, f = draft.get(key), final.get(key)
        px = share = None
        if d is not None and f is not None:
            px = _dist(d, f)
            share = px / length if length > 0 else None
            shares.append((px, share))
        elif d is None and f is not None:
            entry["landmarks_added"] += 1
        elif d is not None and f is None:
            entry["landmarks_removed"] += 1
        entry[f"{key}_px"] = None if px is None else round(px, 2)
        entry[f"{key}_share"] = None if share is None else round(share, 4)
    entry["landmark_px"] = round(max(p for p, _ in shares), 2) if shares else None
    known = [s for _, s in shares if s is not None]
    entry["landmark_share"] = round(max(known), 4) if known else None
    entry["unchanged"] = (edits.total == 0 and not entry["class_changed"] and not entry["landmarks_added"]
                          and not entry["landmarks_removed"] and all(p <= SAME_PX for p, _ in shares))
    entry["minor"] = (not entry["class_changed"] and not entry["landmarks_added"] and not entry["landmarks_removed"]
                      and iou >= MINOR_IOU and all(s is None or s <= MINOR_LANDMARK_SHARE for _, s in shares))
    return entry


def compare_geometries(draft: dict, final: dict) -> dict:
    """Per-nail corrections from ``draft`` to ``final`` and the image's outcome (see the module)."""
    dn, fn = draft.get("nails") or [], final.get("nails") or []
    matches = match_nails(dn, fn)
    nails = []
    for i, j, _ in matches:
        nails.append({"draft": i, "final": j, "status": "matched", **compare_nail(dn[i], fn[j])})
    matched_d, matched_f = {i for i, _, _ in matches}, {j for _, j, _ in matches}
    nails += [{"draft": i, "final": None, "status": "deleted", "finger_draft": dn[i].get("finger")}
              for i in range(len(dn)) if i not in matched_d]
    nails += [{"draft": None, "final": j, "status": "added", "finger_final": fn[j].get("finger")}
              for j in range(len(fn)) if j not in matched_f]
    matched = [n for n in nails if n["status"] == "matched"]
    added, deleted = len(fn) - len(matched_f), len(dn) - len(matched_d)
    ignore_changed = (draft.get("ignore") or []) != (final.get("ignore") or [])
    if not added and not deleted and all(n["unchanged"] for n in matched) and not ignore_changed:
        outcome = "unchanged"
    elif not added and not deleted and all(n["minor"] for n in matched):
        outcome = "minor"
    else:
        outcome = "major"
    ious = [n["iou"] for n in matched]
    landmark_px = [n["landmark_px"] for n in matched if n["landmark_px"] is not None]
    shares = [n["landmark_share"] for n in matched if n["landmark_share"] is not None]
    summary = {
        "outcome": outcome, "nails_draft": len(dn), "nails_final": len(fn), "nails_matched": len(matched),
        "nails_added": added, "nails_deleted": deleted, "nails_unchanged": sum(n["unchanged"] for n in matched),
        "vertices_moved": sum(n["vertices_moved"] for n in matched), "vertices_added": sum(n["vertices_added"] for n in matched),
        "vertices_removed": sum(n["vertices_removed"] for n in matched), "classes_changed": sum(n["class_changed"] for n in matched),
        "landmarks_added": sum(n["landmarks_added"] for n in matched), "landmarks_removed": sum(n["landmarks_removed"] for n in matched),
        "mean_iou": round(sum(ious) / len(ious), 4) if ious else None, "min_iou": round(min(ious), 4) if ious else None,
        "mean_landmark_px": round(sum(landmark_px) / len(landmark_px), 2) if landmark_px else None,
        "max_landmark_share": round(max(shares), 4) if shares else None, "ignore_changed": ignore_changed,
    }
    return {"nails": nails, "summary": summary}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# --- records (Django) --------------------------------------------------------------------------------------

def _finished_candidates():
    from django.db.models import Exists, OuterRef

    from labeling.models import Annotation, AnnotationRevision

    from .models import CorrectionRecord

    finished = AnnotationRevision.objects.filter(annotation=OuterRef("pk"), source=AnnotationRevision.Source.HUMAN,
                                                 status__in=[Annotation.Status.SUBMITTED, Annotation.Status.ACCEPTED])
    recorded = CorrectionRecord.objects.filter(image_id=OuterRef("image_id"))
    return Annotation.objects.filter(Exists(finished)).exclude(Exists(recorded)).select_related("image")


def record_for(annotation):
    """The CorrectionRecord of one finished annotation (made and saved), or None when it is not finished."""
    from django.db import IntegrityError, transaction

    from labeling.models import Annotation, AnnotationRevision
    from training.models import ModelVersion

    from .models import CorrectionRecord, OpenEvent, Prediction

    human, model = AnnotationRevision.Source.HUMAN, AnnotationRevision.Source.MODEL
    revisions = list(annotation.revisions.order_by("version"))
    finished = next((r for r in revisions if r.source == human
                     and r.status in (Annotation.Status.SUBMITTED, Annotation.Status.ACCEPTED)), None)
    if finished is None:
        return None
    first_human = next(r for r in revisions if r.source == human)
    draft = next((r for r in reversed(revisions) if r.source == model and r.version < first_human.version), None)
    prediction = version = None
    if draft is not None:
        prediction = (Prediction.objects.select_related("model_version")
                      .filter(image_id=annotation.image_id, draft_version=draft.version).order_by("-updated_at").first())
        version = prediction.model_version if prediction else ModelVersion.objects.filter(name=draft.model_version).first()
    opened = None
    if finished.author_id:
        first_save = next(r for r in revisions if r.source == human and r.author_id == finished.author_id)
        opens = OpenEvent.objects.filter(image_id=annotation.image_id, user_id=finished.author_id,
                                         opened_at__lte=first_save.created_at)
        if draft is not None:
            opens = opens.filter(opened_at__gte=draft.created_at)
        opened = opens.order_by("-opened_at").values_list("opened_at", flat=True).first()
    if draft is not None:
        comparison = compare_geometries(draft.geometry, finished.geometry)
        outcome = comparison["summary"]["outcome"]
    else:
        comparison = {"nails": [], "summary": {"outcome": "no_draft", "nails_final": len(finished.geometry.get("nails") or [])}}
        outcome = CorrectionRecord.Outcome.NO_DRAFT
    s = comparison["summary"]
    record = CorrectionRecord(
        image_id=annotation.image_id, prediction=prediction, model_version=version,
        model_version_name=(version.name if version else (draft.model_version if draft else "")), drafted=draft is not None,
        draft_version=draft.version if draft else None, final_version=finished.version, annotator_id=finished.author_id,
        outcome=outcome, nails=comparison["nails"], summary=s, nails_draft=s.get("nails_draft", 0),
        nails_final=s.get("nails_final", 0), nails_added=s.get("nails_added", 0), nails_deleted=s.get("nails_deleted", 0),
        vertices_moved=s.get("vertices_moved", 0), vertices_added=s.get("vertices_added", 0),
        vertices_removed=s.get("vertices_removed", 0), classes_changed=s.get("classes_changed", 0),
        mean_iou=s.get("mean_iou"), opened_at=opened, submitted_at=finished.created_at,
        seconds_to_submit=(finished.created_at - opened).total_seconds() if opened else None)
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError:  # collected at the same time elsewhere
        return CorrectionRecord.objects.get(image_id=annotation.image_id)
    return record


def collect_corrections(limit: int | None = None) -> int:
    """Make the missing CorrectionRecords; returns how many were made."""
    made = 0
    candidates = _finished_candidates().order_by("image_id")
    if limit:
        candidates = candidates[:limit]
    for annotation in candidates:
        made += record_for(annotation) is not None
    return made


def dashboard() -> dict:
    """Per model version: drafts, how humans finished them, the time per image with a draft; and the time
    per image without one (every image finished without a draft)."""
    from django.db.models import Count, Q

    from training.models import ModelVersion

    from .models import CorrectionRecord, Prediction

    no_draft = list(CorrectionRecord.objects.filter(drafted=False).values_list("seconds_to_submit", flat=True))
    without = {"images": len(no_draft), "timed": sum(v is not None for v in no_draft), "median_seconds": median(no_draft)}
    stats = {row["model_version"]: row for row in Prediction.objects.values("model_version").order_by().annotate(
        predictions=Count("id"), drafts=Count("id", filter=Q(draft_state__in=["drafted", "kept"])),
        pending=Count("id", filter=Q(review_state="pending")), rejected=Count("id", filter=Q(review_state="rejected")))}
    rows = []
    versions = ModelVersion.objects.filter(Q(pk__in=list(stats)) | Q(is_active=True)).order_by("-is_active", "-created_at")
    for version in versions:
        records = list(CorrectionRecord.objects.filter(model_version=version, drafted=True).values(
            "outcome", "seconds_to_submit", "mean_iou", "vertices_moved", "vertices_added", "vertices_removed",
            "classes_changed", "nails_added", "nails_deleted"))
        finished = len(records)
        counts = {k: sum(r["outcome"] == k for r in records) for k in ("unchanged", "minor", "major")}
        share = (lambda k: counts[k] / finished if finished else None)
        seconds = [r["seconds_to_submit"] for r in records]
        ious = [r["mean_iou"] for r in records if r["mean_iou"] is not None]
        med_with = median(seconds)
        rows.append({
            "model_version": version.name, "id": version.pk, "is_active": version.is_active,
            "val_miou": (version.metrics or {}).get("miou"),
            **{k: stats.get(version.pk, {}).get(k, 0) for k in ("predictions", "drafts", "pending", "rejected")},
            "finished": finished, **counts,
            "share_unchanged": share("unchanged"), "share_minor": share("minor"),
            "share_unchanged_or_minor": (counts["unchanged"] + counts["minor"]) / finished if finished else None,
            "mean_nail_iou": round(sum(ious) / len(ious), 4) if ious else None,
            "vertex_edits_per_image": (sum(r["vertices_moved"] + r["vertices_added"] + r["vertices_removed"] for r in records)
                                       / finished) if finished else None,
            "nails_added": sum(r["nails_added"] for r in records), "nails_deleted": sum(r["nails_deleted"] for r in records),
            "classes_changed": sum(r["classes_changed"] for r in records),
            "timed": sum(v is not None for v in seconds), "median_seconds_with_draft": med_with,
            "median_seconds_without_draft": without["median_seconds"],
            "time_saved_share": (1 - med_with / without["median_seconds"]) if med_with is not None and without["median_seconds"] else None,
        })
    return {"models": rows, "without_draft": without}
