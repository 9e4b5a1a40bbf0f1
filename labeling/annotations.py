"""Saving and reviewing annotations: optimistic locking, validation, revisions. Plain functions.

Every change bumps ``Annotation.version`` by one through a conditional UPDATE (``WHERE version = v``),
so of two clients saving from the same version exactly one wins, whatever the database; the other gets
``VersionConflict`` carrying the current state. Every version is also written as an AnnotationRevision
in the same transaction: nothing is ever half-saved and nothing is ever lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from dataset.geometry import GeometryReport, normalize_geometry, validate_geometry

from .models import Annotation, AnnotationRevision, Image
from .permissions import ADMIN, ANNOTATOR, role_of

EDITABLE_STATUSES = {Annotation.Status.DRAFT, Annotation.Status.SUBMITTED}


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


def _check_version(version) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise AnnotationError("'version' is required: the version your edit started from (a whole number >= 0)")
    return version


def save_annotation(image: Image, user, *, geometry, version, status: str = Annotation.Status.DRAFT,
                    source: str = AnnotationRevision.Source.HUMAN, model_version: str = "", note: str = "") -> SaveResult:
    """Save new geometry for an image as the next version."""
    role = role_of(user)
    version = _check_version(version)
    if role not in (ADMIN, ANNOTATOR):
        raise NotAllowed("only annotators and admins may change labels")
    if status not in EDITABLE_STATUSES:
        raise AnnotationError(f"status must be one of {sorted(EDITABLE_STATUSES)} when saving labels; reviews go through the review action")
    report: GeometryReport = validate_geometry(geometry, image.width, image.height, require_complete=status == Annotation.Status.SUBMITTED)
    if not report.ok:
        raise InvalidGeometry("the labels are not valid: nothing was saved", **report.to_dict())
    clean = normalize_geometry(geometry)
    now = timezone.now()
    author = user if getattr(user, "pk", None) else None
    with transaction.atomic():
        current = Annotation.objects.select_related("assignee").defer("geometry").get(image=image)
        if role == ANNOTATOR:
            if current.assignee_id not in (None, user.pk):
                raise NotAllowed(f"this image is assigned to {current.assignee.username}")
            if current.status == Annotation.Status.ACCEPTED:
                raise NotAllowed("this annotation was accepted; only an admin can change it now")
        guard = Annotation.objects.filter(pk=current.pk, version=version)
        if role == ANNOTATOR:
            guard = guard.filter(Q(assignee__isnull=True) | Q(assignee=user))
        changes = dict(geometry=clean, version=F("version") + 1, status=status, updated_by=author, updated_at=now)
        if role == ANNOTATOR and current.assignee_id is None:
            changes["assignee"] = user  # saving an open-queue image claims it
        if not guard.update(**changes):
            current.refresh_from_db(fields=["version"])
            raise VersionConflict(
                f"someone else saved this annotation first: you edited version {version}, the current one is {current.version}",
                current_version=current.version,
            )
        current = Annotation.objects.select_related("assignee", "reviewer", "updated_by").defer("geometry").get(pk=current.pk)
        current.geometry = clean
        AnnotationRevision.objects.create(
            annotation=current, version=current.version, geometry=clean, status=status, source=source,
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
        Annotation.objects.filter(pk=current.pk).update(geometry=clean, version=F("version") + 1, status=status,
                                                        updated_by=author, updated_at=now)
        current.refresh_from_db()
        AnnotationRevision.objects.create(annotation=current, version=current.version, geometry=clean, status=status,
                                          author=author, note=note[:500], created_at=now)
    return current
