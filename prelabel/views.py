"""Pages: the prediction review (new uploads with the model's overlay, sortable by confidence; accept,
send to annotation, reject), one prediction, and the correction dashboard per model version (with the
queue order and the promotion gate for admins)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import role_required
from accounts.roles import ADMIN, ANNOTATOR, REVIEWER, role_of
from dataset.geometry import FINGER_NAMES
from jobs.registry import JobArgumentError
from jobs.runner import BrokerUnavailable, enqueue_job
from labeling.models import Participant
from labeling.queue import current_order
from training.models import ModelVersion

from . import drafts, metrics, uncertainty
from .api import human_agreement, ordered
from .models import CorrectionRecord, Prediction, PromotionDecision

SORTS = {"confidence": "least confident first", "-confidence": "most confident first",
         "-uncertainty": "most uncertain first", "uncertainty": "least uncertain first", "-created_at": "newest first"}
STATES = ["pending", "accepted", "sent", "rejected", "all"]


def shapes(prediction: Prediction) -> list[dict]:
    """The prediction's nails as SVG polygons (image pixel coordinates) with their confidence label."""
    out = []
    for index, nail in enumerate(n for n in prediction.nails if not n.get("dropped")):
        xs = [p[0] for p in nail["polygon"]]
        ys = [p[1] for p in nail["polygon"]]
        finger = nail.get("finger")
        out.append({"index": index + 1, "points": " ".join(f"{x:.2f},{y:.2f}" for x, y in nail["polygon"]),
                    "x": min(xs), "y": max(0.0, min(ys) - 2), "confidence": nail.get("confidence"),
                    "finger": finger, "finger_name": FINGER_NAMES.get(finger, "unknown finger") if finger else "unknown finger",
                    "base": nail.get("base"), "tip": nail.get("tip")})
    return out


def _back(request, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


@role_required(ADMIN, REVIEWER)
@require_GET
def review_predictions(request):
    """Reviewers: predictions on new uploads, with the overlay, sortable by confidence."""
    role = role_of(request.user)
    state = request.GET.get("state", "pending")
    state = state if state in STATES else "pending"
    sort = request.GET.get("sort", "confidence")
    sort = sort if sort in SORTS else "confidence"
    models = list(ModelVersion.objects.order_by("-is_active", "-created_at").only("pk", "name", "is_active"))
    active = next((m for m in models if m.is_active), None)
    model_name = request.GET.get("model") or ""
    predictions = Prediction.objects.select_related("model_version", "image", "image__participant", "image__annotation",
                                                    "reviewed_by").defer("overlay_png", "image__annotation__geometry")
    if state != "all":
        predictions = predictions.filter(review_state=state)
    if model_name:
        predictions = predictions.filter(model_version__name=model_name)
    total = predictions.count()
    rows = [{"p": p, "shapes": shapes(p)} for p in ordered(predictions, sort)[:100]]
    return render(request, "prelabel/review.html", {
        "rows": rows, "total": total, "state": state, "states": STATES, "sort": sort, "sorts": SORTS, "sort_label": SORTS[sort], "models": models,
        "model_name": model_name, "active": active, "is_admin": role == ADMIN, "reasons": drafts.REJECT_REASONS,
        "participants": Participant.objects.filter(erased_at__isnull=True).order_by("code").values_list("code", flat=True),
        "annotators": get_user_model().objects.filter(groups__name=ANNOTATOR).order_by("username").values_list("username", flat=True),
    })


@role_required(ADMIN, REVIEWER)
@require_GET
def prediction_page(request, prediction_id):
    role = role_of(request.user)
    prediction = get_object_or_404(Prediction.objects.select_related("model_version", "image", "image__participant",
                                                                     "image__annotation", "reviewed_by"), pk=prediction_id)
    correction = CorrectionRecord.objects.filter(image_id=prediction.image_id).first()
    if correction is None:
        metrics.collect_corrections()
        correction = CorrectionRecord.objects.filter(image_id=prediction.image_id).first()
    return render(request, "prelabel/prediction.html", {
        "p": prediction, "image": prediction.image, "shapes": shapes(prediction), "agreement": human_agreement(prediction),
        "correction": correction, "is_admin": role == ADMIN, "reasons": drafts.REJECT_REASONS,
        "annotators": get_user_model().objects.filter(groups__name=ANNOTATOR).order_by("username").values_list("username", flat=True),
        "dropped": [n for n in prediction.nails if n.get("dropped")],
    })


@role_required(ADMIN, REVIEWER)
@require_POST
def decide(request, prediction_id):
    prediction = get_object_or_404(Prediction.objects.select_related("model_version", "image"), pk=prediction_id)
    decision = request.POST.get("decision")
    try:
        if decision == "accept":
            drafts.accept_draft(prediction, request.user)
            messages.success(request, f"Image {prediction.image_id}: draft accepted; it waits for review now.")
        elif decision == "send":
            username = request.POST.get("assignee") or ""
            assignee = get_user_model().objects.filter(username=username).first() if username else None
            drafts.send_to_annotation(prediction, request.user, assignee)
            messages.success(request, f"Image {prediction.image_id}: sent to annotation" + (f" ({username})." if assignee else "."))
        elif decision == "reject":
            drafts.reject_image(prediction, request.user, request.POST.get("reason", ""), request.POST.get("comment", ""))
            messages.success(request, f"Image {prediction.image_id}: rejected.")
        else:
            messages.error(request, "Unknown decision.")
    except drafts.DraftError as exc:
        messages.error(request, f"Image {prediction.image_id}: {exc}")
    return redirect(_back(request, reverse("prelabel-review")))


@role_required(ADMIN)
@require_POST
def run(request):
    """Admins: start a prelabel job for a participant, a selection or every image open for labelling."""
    arguments = {"model": request.POST.get("model") or "active"}
    if request.POST.get("model", "").isdigit():
        arguments["model"] = int(request.POST["model"])
    ids = [int(v) for v in request.POST.getlist("image_ids") if v.isdigit()]
    if ids:
        arguments.update(image_ids=ids, force=True)
    elif request.POST.get("participant"):
        arguments["participant"] = request.POST["participant"]
    else:
        arguments["unlabeled"] = True
    try:
        job, created = enqueue_job("prelabel", arguments, user=request.user)
    except (JobArgumentError, BrokerUnavailable) as exc:
        messages.error(request, f"Pre-labeling not started: {exc}")
    else:
        messages.success(request, f"Pre-labeling job {job.pk} {'queued' if created else 'is already ' + job.status}.")
    return redirect(_back(request, reverse("prelabel-review")))


@role_required(ADMIN, REVIEWER)
@require_GET
def metrics_page(request):
    role = role_of(request.user)
    metrics.collect_corrections()
    board = metrics.dashboard()
    return render(request, "prelabel/metrics.html", {
        "board": board, "is_admin": role == ADMIN, "order": current_order(), "orders": uncertainty.queue_orders(),
        "recent": CorrectionRecord.objects.select_related("annotator").order_by("-submitted_at")[:50],
        "decisions": PromotionDecision.objects.select_related("model_version", "previous_active", "decided_by")[:30],
        "models": ModelVersion.objects.order_by("-is_active", "-created_at")[:50],
    })


@role_required(ADMIN)
@require_POST
def queue_order(request):
    try:
        setting = uncertainty.set_queue_order(request.POST.get("order", ""), request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The open queue is now ordered {current_order().label} ({setting.order}).")
    return redirect(reverse("prelabel-metrics"))


@role_required(ADMIN)
@require_POST
def promote(request):
    """Admins: start a promote_model job (the gate measures both models on the current snapshot)."""
    arguments = {"model": request.POST.get("model", "")}
    if request.POST.get("override_reason", "").strip():
        arguments["override_reason"] = request.POST["override_reason"].strip()
    try:
        job, created = enqueue_job("promote_model", arguments, user=request.user)
    except (JobArgumentError, BrokerUnavailable) as exc:
        messages.error(request, f"Promotion not started: {exc}")
    else:
        messages.success(request, f"Promotion job {job.pk} {'queued' if created else 'is already ' + job.status}: "
                                  "the decision appears below when it is done.")
    return redirect(reverse("prelabel-metrics"))
