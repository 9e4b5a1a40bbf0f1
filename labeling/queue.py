"""The annotator's work queue: hand out the next image atomically, count what is done and left.

Plain functions (the API and the pages call them).

Order of ``claim_next``:

1. images already assigned to the annotator and not yet submitted (unlabeled or draft): work they
   were given by an admin or started and left;
2. images a reviewer rejected: they stay assigned to their annotator, who sees the comment;
3. the open queue: images nobody has claimed (unlabeled or draft), in the queue's order: oldest first
   by default. Other orders are registered with ``register_queue_order`` (the prelabel app adds
   "uncertainty": the images its active model is least sure about first), and the order in use comes from
   the function given to ``set_queue_order_source`` (the prelabel app's: an admin's choice); the queue page
   shows it (``QueueCounts.order``). Claiming sets ``Annotation.assignee``.

Claiming is atomic. On PostgreSQL the candidate row is locked with ``SELECT ... FOR UPDATE SKIP LOCKED``
so concurrent annotators take different rows without waiting for each other; on SQLite the
transaction starts with ``BEGIN IMMEDIATE`` (settings: ``transaction_mode``), which serialises writers.
In both cases the claim itself is a conditional ``UPDATE ... WHERE assignee IS NULL``: if anything else
(an admin's assignment, a save that claims) took the row first, the update touches nothing and the next
candidate is tried. Two claims never return the same image.

The **incomplete-labels queue** (``claim_next_incomplete``, ``incomplete_for``) holds finished labels
(submitted or accepted) in which some nail lacks its finger class or its base/tip landmarks: imported
polygon-only data, mostly. Annotators claim them the same way (their own claims first, then unclaimed ones,
oldest first; another annotator's claim is never taken) and may edit them although they are accepted
(``is_incomplete``, used by ``annotations.save_annotation`` and the annotation page). Once an annotator saves,
the labels are theirs like any other work: a draft until they submit, then back to review (``submitted``),
because the fingers and landmarks they added are new human work a reviewer has not seen yet. They leave this
queue at the first save (no longer submitted or accepted) and never come back once complete.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet

from accounts.roles import ADMIN, ANNOTATOR, role_of
from dataset.geometry import nail_is_complete

from .models import Annotation, Image

S = Annotation.Status
TO_DO = (S.UNLABELED, S.DRAFT)
DONE = (S.SUBMITTED, S.ACCEPTED)
MAX_TRIES = 20
QUEUES = ("labels", "incomplete")  # the normal queue and the incomplete-labels queue (the queue page's tabs)


class QueueNotAllowed(Exception):
    """The user may not take work from the queue (reviewers, accounts without a role)."""


@dataclass(frozen=True)
class QueueOrder:
    """An order of the open queue: ``apply`` orders a queryset of open Annotations (ties: image id)."""

    name: str
    label: str
    apply: Callable[[QuerySet], QuerySet]


OLDEST_FIRST = QueueOrder("oldest", "oldest first", lambda annotations: annotations.order_by("image_id"))
QUEUE_ORDERS: dict[str, QueueOrder] = {OLDEST_FIRST.name: OLDEST_FIRST}
_order_source: Callable[[], str] | None = None


def register_queue_order(order: QueueOrder) -> None:
    QUEUE_ORDERS[order.name] = order


def set_queue_order_source(source: Callable[[], str] | None) -> None:
    """``source()`` names the order the open queue uses now (an unknown name falls back to oldest first)."""
    global _order_source
    _order_source = source


def current_order() -> QueueOrder:
    name = _order_source() if _order_source is not None else OLDEST_FIRST.name
    return QUEUE_ORDERS.get(name, OLDEST_FIRST)


@dataclass
class QueueCounts:
    assigned: int   # assigned to the user, not submitted yet (unlabeled or draft)
    rejected: int   # rejected by a reviewer, back with the user
    open: int       # unclaimed, anyone may take them
    submitted: int  # the user's, waiting for review
    accepted: int   # the user's, accepted
    done: int       # submitted + accepted
    remaining: int  # assigned + rejected + open

    @property
    def order(self) -> QueueOrder:
        """The order of the open queue now (shown on the queue page; not part of ``to_dict``)."""
        return current_order()

    def to_dict(self) -> dict:
        return asdict(self)


def _check(user) -> None:
    if role_of(user) not in (ADMIN, ANNOTATOR):
        raise QueueNotAllowed("only annotators and admins take images from the queue")


def _open_candidates():
    candidates = current_order().apply(Annotation.objects.filter(assignee__isnull=True, status__in=TO_DO))
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True)
    return candidates


def claim_next(user) -> Image | None:
    """The next image for ``user`` to label (see the module docstring), claimed; None when the queue is empty."""
    _check(user)
    mine = Annotation.objects.filter(assignee=user)
    for own in (mine.filter(status__in=TO_DO), mine.filter(status=S.REJECTED)):
        image_id = own.order_by("image_id").values_list("image_id", flat=True).first()
        if image_id is not None:
            return Image.objects.get(pk=image_id)
    for _ in range(MAX_TRIES):
        with transaction.atomic():
            candidate = _open_candidates().values_list("pk", "image_id").first()
            if candidate is None:
                return None
            pk, image_id = candidate
            if Annotation.objects.filter(pk=pk, assignee__isnull=True).update(assignee=user):
                return Image.objects.get(pk=image_id)
    return None  # pragma: no cover  (only under a storm of concurrent assignments)


def counts_for(user) -> QueueCounts:
    """How much work the user has done and has left."""
    _check(user)
    mine = dict(Annotation.objects.filter(assignee=user).values_list("status").order_by().annotate(n=Count("id")))
    open_ = Annotation.objects.filter(assignee__isnull=True, status__in=TO_DO).count()
    assigned = sum(mine.get(s, 0) for s in TO_DO)
    rejected = mine.get(S.REJECTED, 0)
    submitted, accepted = mine.get(S.SUBMITTED, 0), mine.get(S.ACCEPTED, 0)
    return QueueCounts(assigned=assigned, rejected=rejected, open=open_, submitted=submitted, accepted=accepted,
                       done=submitted + accepted, remaining=assigned + rejected + open_)


def my_annotations(user, limit: int = 200):
    """The user's images, the ones needing work first (rejected, then drafts), newest changes first."""
    _check(user)
    order = {S.REJECTED: 0, S.DRAFT: 1, S.UNLABELED: 2, S.SUBMITTED: 3, S.ACCEPTED: 4}
    rows = list(Annotation.objects.filter(assignee=user).select_related("image", "reviewer")
                .order_by("-updated_at")[:limit])
    rows.sort(key=lambda a: order.get(a.status, 9))
    return rows


def imported_accepted() -> QuerySet:
    """Labels that are accepted without a reviewer's decision: they came in accepted (``import_labels``)."""
    return Annotation.objects.filter(status=S.ACCEPTED, reviewed_at__isnull=True)


def review_counts() -> dict:
    """Reviewers: how many annotations wait for review, and how many were decided (``accepted`` and
    ``rejected`` by reviewers; ``imported``: accepted on import, no reviewer decided)."""
    reviewed = Q(reviewed_at__isnull=False)
    row = Annotation.objects.aggregate(
        submitted=Count("id", filter=Q(status=S.SUBMITTED)), accepted=Count("id", filter=Q(status=S.ACCEPTED) & reviewed),
        rejected=Count("id", filter=Q(status=S.REJECTED)), imported=Count("id", filter=Q(status=S.ACCEPTED) & ~reviewed))
    return row


def next_to_review(after_image_id: int | None = None) -> Image | None:
    """The oldest submitted image (after ``after_image_id`` when given, wrapping around)."""
    submitted = Annotation.objects.filter(status=S.SUBMITTED).order_by("image_id")
    if after_image_id is not None:
        later = submitted.filter(image_id__gt=after_image_id).values_list("image_id", flat=True).first()
        if later is not None:
            return Image.objects.get(pk=later)
    first = submitted.values_list("image_id", flat=True).first()
    return None if first is None else Image.objects.get(pk=first)


# --- the incomplete-labels queue ------------------------------------------------------------------------------

def is_incomplete(status: str, geometry: dict) -> bool:
    """Finished labels (submitted or accepted) with a nail that lacks its finger class or base/tip landmarks:
    they belong to the incomplete-labels queue and annotators may complete them, accepted or not."""
    return status in DONE and any(not nail_is_complete(nail) for nail in (geometry or {}).get("nails", []))


def _incomplete_rows(annotations: QuerySet) -> list[int]:
    """Primary keys of the incomplete annotations among ``annotations`` (the geometry is read in Python: the
    rule is ``dataset.geometry.nail_is_complete``, the same for SQLite and PostgreSQL)."""
    rows = annotations.filter(status__in=DONE).values_list("pk", "status", "geometry").order_by("image_id")
    return [pk for pk, status, geometry in rows.iterator(chunk_size=500) if is_incomplete(status, geometry)]


def incomplete_annotations() -> QuerySet:
    """Every incomplete annotation, whoever claimed it (the dataset page counts these)."""
    return Annotation.objects.filter(pk__in=_incomplete_rows(Annotation.objects.all()))


def incomplete_for(user) -> QuerySet:
    """The incomplete annotations ``user`` may take: their own claims and unclaimed ones, oldest image first."""
    _check(user)
    available = Annotation.objects.filter(Q(assignee=user) | Q(assignee__isnull=True))
    return Annotation.objects.filter(pk__in=_incomplete_rows(available)).order_by("image_id")


@dataclass
class IncompleteCounts:
    mine: int       # incomplete labels the user claimed and has not saved yet
    open: int       # unclaimed incomplete labels
    remaining: int  # mine + open

    def to_dict(self) -> dict:
        return asdict(self)


def incomplete_counts(user) -> IncompleteCounts:
    rows = list(incomplete_for(user).values_list("assignee_id", flat=True))
    mine = sum(1 for assignee in rows if assignee == user.pk)
    return IncompleteCounts(mine=mine, open=len(rows) - mine, remaining=len(rows))


def claim_next_incomplete(user) -> Image | None:
    """The next incomplete labels for ``user`` to complete, claimed: their own claim first, then the oldest
    unclaimed one (a conditional UPDATE, as ``claim_next``: two annotators never get the same image)."""
    _check(user)
    mine = incomplete_for(user).filter(assignee=user).values_list("image_id", flat=True).first()
    if mine is not None:
        return Image.objects.get(pk=mine)
    for pk, image_id in incomplete_for(user).filter(assignee__isnull=True).values_list("pk", "image_id")[:MAX_TRIES]:
        if Annotation.objects.filter(pk=pk, assignee__isnull=True, status__in=DONE).update(assignee=user):
            return Image.objects.get(pk=image_id)
    return None
