"""Saving and reviewing annotations: optimistic locking, validation, revisions. Plain functions.

Every change bumps ``Annotation.version`` by one through a conditional UPDATE (``WHERE version = v``),
so of two clients saving from the same version exactly one wins, whatever the database; the other gets
``VersionConflict`` carrying the current state. Every version is also written as an AnnotationRevision
in the same transaction: nothing is ever half-saved and nothing is ever lost.

A draft saves whatever the annotator drew: a nail or ignore region that breaks a drawing rule
(``dataset.geometry.DRAWING_RULES``: crossing itself, too few vertices, outside the image, landmarks off
the nail...) is kept in ``Annotation.invalid_shapes`` with its problems, apart from ``geometry``, which
holds only valid shapes. So everything that reads labels (rasters, snapshots, exports, training) never
meets an invalid shape, and submitting needs ``invalid_shapes`` empty. JSON that no drawing makes (a
point that is not two numbers, an unknown field, a finger 11) is still refused whole.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.roles import ADMIN, ANNOTATOR, role_of
from dataset.geometry import DRAWING_RULES, GeometryReport, normalize_geometry, validate_geometry

from . import queue
from .models import Annotation, AnnotationRevision, Image

EDITABLE_STATUSES = {Annotation.Status.DRAFT, Annotation.Status.SUBMITTED}
NOTHING_TO_ACCEPT = ("these labels have no nail, so there is nothing to accept: reject them with a comment saying "
                     "which nails to draw")


class AnnotationError(Exception):
    status_code = 400

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.extra = extra


class VersionConflict(AnnotationError):
    status_code = 409


class InvalidGeometry(AnnotationError):
    status_code = 400


class NotAllowed(AnnotationError):
    status_code = 403


@dataclass
class SaveResult:
    annotation: Annotation
    warnings: list = field(default_factory=list)


def _problems(errors, limit: int = 6) -> str:
    messages = [issue.message for issue in errors]
    more = f"; and {len(messages) - limit} more" if len(messages) > limit else ""
    return "; ".join(messages[:limit]) + more


def split_draft(geometry, report: GeometryReport) -> tuple[dict, list[dict]]:
    """``(valid geometry, invalid shapes)`` of a draft whose only errors break drawing rules.

    Each invalid shape is ``{"kind": "nail" | "ignore", "index": its position in what was drawn,
    "shape": the nail (or the ignore ring) in canonical form, "errors": its problems}``, so that a client
    puts it back where it was. Raises InvalidGeometry when an error is not a drawing rule (the JSON's
    structure, a bad finger, ...) or concerns the whole image.
    """
    refused = [issue for issue in report.errors
               if issue.rule not in DRAWING_RULES or (issue.nail is None and issue.ignore is None)]
    if refused:
        raise InvalidGeometry(f"the labels are not valid, nothing was saved: {_problems(refused)}", **report.to_dict())
    bad = {"nail": {}, "ignore": {}}
    for issue in report.errors:
        kind, index = ("nail", issue.nail) if issue.nail is not None else ("ignore", issue.ignore)
        bad[kind].setdefault(index, []).append(issue.to_dict())
    nails, ignore = geometry.get("nails") or [], geometry.get("ignore") or []
    valid = normalize_geometry({"nails": [n for i, n in enumerate(nails) if i not in bad["nail"]],
                                "ignore": [r for i, r in enumerate(ignore) if i not in bad["ignore"]]})
    invalid = [{"kind": "nail", "index": i, "shape": normalize_geometry({"nails": [nails[i]]})["nails"][0], "errors": errors}
               for i, errors in sorted(bad["nail"].items())]
    invalid += [{"kind": "ignore", "index": i, "shape": normalize_geometry({"ignore": [ignore[i]]})["ignore"][0], "errors": errors}
                for i, errors in sorted(bad["ignore"].items())]
    return valid, invalid


def visible_images(user):
    """The images a user may see: everything for admins and reviewers; for annotators, their own and
    the open queue (unassigned)."""
    role = role_of(user)
    images = Image.objects.all()
    if role in (ADMIN, "reviewer"):
        return images
    if role == ANNOTATOR:
        return images.filter(Q(annotation__assignee=user) | Q(annotation__assignee__isnull=True))
    return images.none()


def check_may_edit(user, current: Annotation) -> None:
    """Raise NotAllowed unless ``user`` may change these labels: admins always; annotators when the image is
    theirs or unassigned and not accepted (accepted labels that are incomplete stay editable). Saving and
    click-a-nail (labeling/click_nail.py) both ask here."""
    role = role_of(user)
    if role not in (ADMIN, ANNOTATOR):
        raise NotAllowed("only annotators and admins may change labels")
    if role == ANNOTATOR:
        if current.assignee_id not in (None, user.pk):
            raise NotAllowed(f"this image is assigned to {current.assignee.username}")
        if current.status == Annotation.Status.ACCEPTED and not queue.is_incomplete(current.status, _geometry_of(current)):
            raise NotAllowed("this annotation was accepted; only an admin can change it now")


def _geometry_of(current: Annotation) -> dict:
    """The annotation's geometry: as loaded, or read when the caller deferred it (saving does: it rarely needs it)."""
    if "geometry" in current.get_deferred_fields():
        return Annotation.objects.values_list("geometry", flat=True).get(pk=current.pk)
    return current.geometry


def _check_version(version) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise AnnotationError("'version' is required: the version your edit started from (a whole number >= 0)")
    return version


def save_annotation(image: Image, user, *, geometry, version, status: str = Annotation.Status.DRAFT,
                    source: str = AnnotationRevision.Source.HUMAN, model_version: str = "", note: str = "") -> SaveResult:
    """Save new geometry for an image as the next version: a draft keeps invalid shapes apart (see
    ``split_draft``); a submission must be valid and complete."""
    role = role_of(user)
    version = _check_version(version)
    if role not in (ADMIN, ANNOTATOR):
        raise NotAllowed("only annotators and admins may change labels")
    if status not in EDITABLE_STATUSES:
        raise AnnotationError(f"status must be one of {sorted(EDITABLE_STATUSES)} when saving labels; reviews go through the review action")
    report: GeometryReport = validate_geometry(geometry, image.width, image.height, require_complete=status == Annotation.Status.SUBMITTED)
    if status == Annotation.Status.SUBMITTED:
        if not report.ok:
            raise InvalidGeometry(f"the labels cannot be submitted, nothing was saved: {_problems(report.errors)}",
                                  **report.to_dict())
        clean, invalid = normalize_geometry(geometry), []
    else:
        clean, invalid = split_draft(geometry, report)
    now = timezone.now()
    author = user if getattr(user, "pk", None) else None
    with transaction.atomic():
        current = Annotation.objects.select_related("assignee").defer("geometry", "invalid_shapes").get(image=image)
        check_may_edit(user, current)
        guard = Annotation.objects.filter(pk=current.pk, version=version)
        if role == ANNOTATOR:
            guard = guard.filter(Q(assignee__isnull=True) | Q(assignee=user))
        changes = dict(geometry=clean, invalid_shapes=invalid, version=F("version") + 1, status=status, updated_by=author,
                       updated_at=now)
        if role == ANNOTATOR and current.assignee_id is None:
            changes["assignee"] = user  # saving an open-queue image claims it
        if not guard.update(**changes):
            current.refresh_from_db(fields=["version"])
            raise VersionConflict(
                f"someone else saved this annotation first: you edited version {version}, the current one is {current.version}",
                current_version=current.version,
            )
        current = Annotation.objects.select_related("assignee", "reviewer", "updated_by").defer("geometry", "invalid_shapes").get(pk=current.pk)
        current.geometry, current.invalid_shapes = clean, invalid
        AnnotationRevision.objects.create(
            annotation=current, version=current.version, geometry=clean, invalid_shapes=invalid, status=status, source=source,
            author=author, model_version=model_version, note=note[:500], created_at=now,
        )
    return SaveResult(current, [w.to_dict() for w in report.warnings])


def review_annotation(image: Image, user, *, decision: str, comment: str = "", version=None) -> Annotation:
    """Accept or reject a submitted annotation. A rejection needs a comment for the annotator."""
    if role_of(user) not in (ADMIN, "reviewer"):
        raise NotAllowed("only reviewers and admins may review")
    statuses = {"accept": Annotation.Status.ACCEPTED, "reject": Annotation.Status.REJECTED}
    if decision not in statuses:
        raise AnnotationError("decision must be 'accept' or 'reject'")
    comment = (comment or "").strip()
    if decision == "reject" and not comment:
        raise AnnotationError("a rejection needs a comment that tells the annotator what to fix")
    now = timezone.now()
    with transaction.atomic():
        current = Annotation.objects.select_for_update().get(image=image)
        if version is not None and _check_version(version) != current.version:
            raise VersionConflict(f"the annotation changed since you looked at it (version {version}, now {current.version})",
                                  current_version=current.version)
        if current.status != Annotation.Status.SUBMITTED:
            raise VersionConflict(f"only submitted annotations can be reviewed; this one is {current.status}", current_version=current.version)
        if decision == "accept" and not current.geometry.get("nails"):
            raise AnnotationError(NOTHING_TO_ACCEPT)
        new_status = statuses[decision]
        Annotation.objects.filter(pk=current.pk).update(
            status=new_status, version=F("version") + 1, reviewer=user, review_comment=comment, reviewed_at=now, updated_at=now,
        )
        current.refresh_from_db()
        AnnotationRevision.objects.create(
            annotation=current, version=current.version, geometry=current.geometry, status=new_status,
            author=user, note=f"{decision}: {comment}"[:500] if comment else decision, created_at=now,
        )
    return current


def assign_annotation(image: Image, assignee) -> Annotation:
    """Admin: give an image to an annotator (or back to the open queue with ``None``)."""
    Annotation.objects.filter(image=image).update(assignee=assignee)
    return Annotation.objects.get(image=image)


def import_annotation(image: Image, geometry: dict, *, status: str, note: str, user=None, replace: bool = False) -> Annotation | None:
    """Labels from another tool become the next version of an image's annotation.

    Checked with the geometry rules (completeness is not required: partial labels are normal in
    imported datasets). An image that already has labels is left alone unless ``replace`` is set; even
    then the old versions stay in the revision history. Returns None when the image was left alone.
    """
    if status not in Annotation.Status.values or status == Annotation.Status.UNLABELED:
        raise AnnotationError(f"imported labels cannot get the status {status!r}")
    report = validate_geometry(geometry, image.width, image.height)
    if not report.ok:
        raise InvalidGeometry("; ".join(issue.message for issue in report.errors), **report.to_dict())
    clean = normalize_geometry(geometry)
    now = timezone.now()
    author = user if getattr(user, "pk", None) else None
    with transaction.atomic():
        current = Annotation.objects.select_for_update().get(image=image)
        if current.version > 0 and not replace:
            return None
        Annotation.objects.filter(pk=current.pk).update(geometry=clean, invalid_shapes=[], version=F("version") + 1, status=status,
                                                        updated_by=author, updated_at=now)
        current.refresh_from_db()
        AnnotationRevision.objects.create(annotation=current, version=current.version, geometry=clean, status=status,
                                          author=author, note=note[:500], created_at=now)
    return current
