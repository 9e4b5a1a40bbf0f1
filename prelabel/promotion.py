"""The promotion gate: which ModelVersion is the active one (pre-labeling and the try-on use it).

A candidate becomes active only when its val mIoU on the **current snapshot's** val split (the newest
ready snapshot) is at least the active model's on the same split, unless an admin overrides the gate with
a reason. Every attempt is recorded as a ``PromotionDecision`` (granted or refused, both mIoUs, the
snapshot, who, the reason).

* Both models are measured the same way: ``ml.evaluate.evaluate`` on the snapshot's masks export, split
  val, each model at its own evaluation size (``TrainConfig.eval_size``: the size it pre-labels at). The
  result is kept (``SnapshotEvaluation``), so each model is evaluated once per snapshot.
* With no active model the candidate is promoted (there is nothing to be worse than); without a ready
  snapshot, or when its val split is empty, the gate cannot measure and refuses unless overridden.
* The flip is one transaction: the model rows are locked, the active model is read again under the lock
  (if it changed since it was measured, the promotion is refused: try again), the old one is deactivated
  and the candidate activated (the database allows one active model), and the decision is written.
* Only admins promote; an override needs a non-empty reason (also a database constraint).
"""
from __future__ import annotations

import math

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.roles import ADMIN, role_of
from curation.models import Snapshot
from training.models import ModelVersion

from .models import PromotionDecision, SnapshotEvaluation


class PromotionError(Exception):
    status_code = 400


class NotAllowed(PromotionError):
    status_code = 403


def current_snapshot() -> Snapshot | None:
    return Snapshot.objects.filter(status=Snapshot.Status.READY).order_by("-created_at", "-id").first()


def evaluate_on_snapshot(version: ModelVersion, snapshot: Snapshot, *, on_progress=None) -> SnapshotEvaluation:
    """The model's val mIoU on the snapshot's val split (ml.evaluate), computed once and kept."""
    found = SnapshotEvaluation.objects.filter(model_version=version, snapshot=snapshot).first()
    if found is not None:
        return found
    from ml.evaluate import evaluate
    from ml.train import TrainConfig
    from training.runs import training_data_dir

    size = TrainConfig.from_dict(version.config).eval_size if version.config else 480
    report = evaluate(version.weights.path, training_data_dir(snapshot), split="val", sizes=(size,), device="cpu",
                      on_progress=on_progress, threads=int(getattr(settings, "NAILSET_PRELABEL_THREADS", 1)) or None)
    metrics = report["sizes"].get(size) or {}
    if not report.get("images") or metrics.get("miou") is None or not math.isfinite(metrics["miou"]):
        raise PromotionError(f"snapshot {snapshot.name} has no val images to measure {version.name} on")
    evaluation, _ = SnapshotEvaluation.objects.get_or_create(model_version=version, snapshot=snapshot, defaults={
        "size": size, "miou": float(metrics["miou"]), "metrics": metrics})
    return evaluation


def gate(candidate: ModelVersion, active: ModelVersion | None, snapshot: Snapshot | None, *, evaluate=evaluate_on_snapshot
         ) -> tuple[bool, float | None, float | None, str]:
    """``(passes, candidate_miou, active_miou, reason)`` without changing anything."""
    if active is None:
        return True, None, None, "no model was active"
    if snapshot is None:
        return False, None, None, "there is no ready snapshot to measure the models on"
    try:
        candidate_miou = evaluate(candidate, snapshot).miou
        active_miou = evaluate(active, snapshot).miou
    except PromotionError as exc:
        return False, None, None, str(exc)
    if candidate_miou >= active_miou:
        return True, candidate_miou, active_miou, (f"val mIoU {candidate_miou:.4f} on {snapshot.name} is at least the active "
                                                   f"{active.name}'s {active_miou:.4f}")
    return False, candidate_miou, active_miou, (f"val mIoU {candidate_miou:.4f} on {snapshot.name} is below the active "
                                                f"{active.name}'s {active_miou:.4f}")


def promote(candidate: ModelVersion, user, *, override_reason: str = "", evaluate=evaluate_on_snapshot) -> PromotionDecision:
    """Try to make ``candidate`` the active model (see the module). Returns the recorded decision; check
    ``decision.promoted``. Raises PromotionError for requests that are not decisions (wrong role, already
    active)."""
    if role_of(user) != ADMIN:
        raise NotAllowed("only admins may change the active model")
    override_reason = (override_reason or "").strip()
    candidate.refresh_from_db()
    if candidate.is_active:
        raise PromotionError(f"{candidate.name} is already the active model")
    active = ModelVersion.objects.active()
    snapshot = current_snapshot()
    passes, candidate_miou, active_miou, reason = gate(candidate, active, snapshot, evaluate=evaluate)
    promoted, override = passes, False
    if not passes and override_reason:
        promoted, override = True, True
        reason = f"override by {user.username}: {override_reason} (the gate said: {reason})"
    decided_by = user if getattr(user, "pk", None) else None
    with transaction.atomic():
        locked = list(ModelVersion.objects.select_for_update().filter(Q(is_active=True) | Q(pk=candidate.pk)).order_by("pk"))
        now_active = next((m for m in locked if m.is_active), None)
        if (now_active.pk if now_active else None) != (active.pk if active else None):
            promoted, override = False, False
            reason = "the active model changed while the models were being measured: try again"
        if promoted:
            ModelVersion.objects.filter(is_active=True).update(is_active=False)
            note = f"{timezone.now():%Y-%m-%d %H:%M} by {user.username}: {reason}"
            ModelVersion.objects.filter(pk=candidate.pk).update(is_active=True, activation_note=note[:2000])
        decision = PromotionDecision.objects.create(
            model_version=candidate, previous_active=active, snapshot=snapshot, snapshot_name=snapshot.name if snapshot else "",
            candidate_miou=candidate_miou, active_miou=active_miou, promoted=promoted, override=override,
            reason=reason, decided_by=decided_by)
    candidate.refresh_from_db()
    return decision
