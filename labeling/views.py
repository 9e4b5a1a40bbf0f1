"""Pages: the participant's upload page at /u/<token>/ (no account needed); the annotator's queue and
annotation tool, the reviewer's list and review page (staff accounts)."""
from functools import wraps

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import role_required
from accounts.roles import ADMIN, ANNOTATOR, REVIEWER, role_of

from . import extensions, queue
from .annotations import NOTHING_TO_ACCEPT, visible_images
from .models import Annotation, Image, Participant
from .erasure import describe_counts, erase_participant, erasure_plan
from .participants import record_consent


def _participant_or_error(request, token):
    """The participant of a usable upload link, or the page saying why not: 404 for an unknown link, 410
    for an expired one and for one whose data was deleted (that link keeps saying so, and when)."""
    participant = Participant.objects.filter(upload_token=token).first()
    if participant is None:
        return None, render(request, "labeling/participant_problem.html",
                            {"problem": "This upload link is not valid. It may have been replaced by a new one: ask the study team."}, status=404)
    problem = participant.token_problem()
    if problem:
        return None, render(request, "labeling/participant_problem.html",
                            {"problem": problem[0].upper() + problem[1:] + ".", "erased": bool(participant.erased_at)}, status=410)
    return participant, None


@require_GET
def participant_page(request, token):
    participant, error = _participant_or_error(request, token)
    if error:
        return error
    return render(request, "labeling/participant_upload.html", {
        "participant": participant,
        "consent_version": settings.NAILSET_CONSENT_VERSION,
        "max_photo_mb": settings.NAILSET_MAX_PHOTO_BYTES // (1024 * 1024),
        "max_video_mb": settings.NAILSET_MAX_VIDEO_BYTES // (1024 * 1024),
        "max_video_seconds": int(settings.NAILSET_MAX_VIDEO_SECONDS),
    })


@require_POST
def participant_consent(request, token):
    participant, error = _participant_or_error(request, token)
    if error:
        return error
    if request.POST.get("agree") != "yes":
        return render(request, "labeling/participant_upload.html", {
            "participant": participant, "consent_version": settings.NAILSET_CONSENT_VERSION,
            "consent_error": "Please tick the box to say that you agree before sending photos.",
        }, status=400)
    try:
        record_consent(participant, request.POST.get("version", ""))
    except ValueError as exc:
        return render(request, "labeling/participant_problem.html", {"problem": str(exc)}, status=400)
    return redirect("participant-page", token=participant.upload_token)


@require_http_methods(["GET", "POST"])
def participant_erase(request, token):
    """"Delete my data": GET shows what will be deleted and asks to confirm; POST with ``confirm=DELETE``
    (the confirmation page's button) erases everything (labeling/erasure.py) and says what went."""
    participant, error = _participant_or_error(request, token)
    if error:
        return error
    if request.method == "GET" or request.POST.get("confirm") != "DELETE":
        return render(request, "labeling/participant_erase_confirm.html", {
            "participant": participant, "plan": erasure_plan(participant),
            "confirm_error": request.method == "POST",
        }, status=400 if request.method == "POST" else 200)
    counts = erase_participant(participant, requested_by="participant (upload page)")
    return render(request, "labeling/participant_erased.html", {"removed": describe_counts(counts), "counts": counts})


@require_GET
def participant_thumbnail(request, token, image_id):
    participant, error = _participant_or_error(request, token)
    if error:
        return error
    image = Image.objects.filter(pk=image_id, participant=participant).first()
    if image is None or not image.thumbnail:
        raise Http404("not found")
    return FileResponse(image.thumbnail.open("rb"), content_type="image/jpeg")


# --- Annotation and review pages (staff accounts) ----------------------------------------------------------

def _page_config(request, image, role, **extra) -> dict:
    annotation = image.annotation
    return {
        "imageId": image.pk, "width": image.width, "height": image.height,
        "fileUrl": f"/api/images/{image.pk}/file/", "apiBase": f"/api/images/{image.pk}/",
        "username": request.user.username, "role": role,
        "participant": image.participant.code, "assignee": annotation.assignee.username if annotation.assignee else None,
        **extra,
    }


class UnknownQueue(Exception):
    pass


def _queue_name(request) -> str:
    """``?queue=`` (or the form field): "labels" (the default) or "incomplete"; anything else is a 400."""
    name = request.POST.get("queue") or request.GET.get("queue") or "labels"
    if name not in queue.QUEUES:
        raise UnknownQueue(f"unknown queue {name[:40]!r}: use one of {', '.join(queue.QUEUES)}")
    return name


def _bad_queue_is_400(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except UnknownQueue as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    return wrapped


@role_required(ADMIN, ANNOTATOR, REVIEWER)  # reviewers are sent to their list
@require_GET
@_bad_queue_is_400
def queue_page(request):
    """The annotator's start page: counts, "next image", their images (rejected ones with the comment); the
    "Incomplete labels" tab (``?queue=incomplete``) lists finished labels whose nails lack a finger or
    landmarks, to complete them."""
    if role_of(request.user) == REVIEWER:
        return redirect("review-list")
    name = _queue_name(request)
    context = {"queue": name, "counts": queue.counts_for(request.user), "incomplete": queue.incomplete_counts(request.user),
               "empty": request.GET.get("empty") == "1"}
    if name == "incomplete":
        rows = queue.incomplete_for(request.user).select_related("image__participant", "assignee")[:200]
        context["incomplete_rows"] = [{"annotation": a, **_missing(a.geometry)} for a in rows]
    else:
        context["mine"] = queue.my_annotations(request.user)
    return render(request, "labeling/queue.html", context)


def _missing(geometry) -> dict:
    nails = geometry.get("nails", [])
    return {"nails": len(nails), "without_finger": sum(n.get("finger") is None for n in nails),
            "without_landmarks": sum(n.get("base") is None or n.get("tip") is None for n in nails)}


@role_required(ADMIN, ANNOTATOR)
@require_POST
@_bad_queue_is_400
def queue_next(request):
    """Claim the next image and open it (or come back to the queue page saying that nothing is left).
    ``queue=incomplete`` (form field or query) takes it from the incomplete-labels queue."""
    if _queue_name(request) == "incomplete":
        image = queue.claim_next_incomplete(request.user)
        if image is None:
            return redirect(reverse("annotate-queue") + "?queue=incomplete&empty=1")
        return redirect(reverse("annotate-image", args=[image.pk]) + "?queue=incomplete")
    image = queue.claim_next(request.user)
    if image is None:
        return redirect(reverse("annotate-queue") + "?empty=1")
    return redirect("annotate-image", image_id=image.pk)


@role_required(ADMIN, ANNOTATOR, REVIEWER)  # reviewers are sent to the review page
@require_GET
@_bad_queue_is_400
def annotate_page(request, image_id):
    """The annotation tool over one image. Annotators open their own images and unclaimed ones; finished
    labels with incomplete nails (``incompleteLabels``) stay editable, accepted or not. Opened from the
    incomplete-labels queue (``?queue=incomplete``), "Next" takes the next image of that queue."""
    role = role_of(request.user)
    if role == REVIEWER:
        return redirect("review-image", image_id=image_id)
    image = get_object_or_404(visible_images(request.user).select_related("participant", "annotation__assignee"), pk=image_id)
    next_url = reverse("annotate-next") + ("?queue=incomplete" if _queue_name(request) == "incomplete" else "")
    config = _page_config(request, image, role, queueUrl=reverse("annotate-queue"), nextUrl=next_url,
                          incompleteLabels=queue.is_incomplete(image.annotation.status, image.annotation.geometry))
    return render(request, "labeling/annotate.html", {"image": image, "config": config,
                                                      "extra_scripts": extensions.annotate_scripts()})


@role_required(ADMIN, REVIEWER)
@require_GET
def review_list(request):
    """Reviewers: what waits for review, the latest human decisions, and apart from them the labels that were
    imported as accepted (no reviewer decided on them)."""
    submitted = (Annotation.objects.filter(status=Annotation.Status.SUBMITTED)
                 .select_related("image", "image__participant", "assignee").order_by("image_id")[:200])
    decided = (Annotation.objects.filter(status__in=[Annotation.Status.ACCEPTED, Annotation.Status.REJECTED], reviewed_at__isnull=False)
               .select_related("image", "image__participant", "assignee", "reviewer").order_by("-reviewed_at", "-id")[:50])
    imported = (queue.imported_accepted().select_related("image", "image__participant", "updated_by")
                .order_by("-updated_at", "-id")[:20])
    return render(request, "labeling/review_list.html", {
        "counts": queue.review_counts(), "submitted": submitted, "decided": decided,
        "imported": [{"annotation": a, **_missing(a.geometry)} for a in imported],
        "empty": request.GET.get("empty") == "1", "can_complete": role_of(request.user) == ADMIN,
    })


@role_required(ADMIN, REVIEWER)
@require_GET
def review_next(request):
    """Open the next submitted image (after ``?after=<image id>`` when given)."""
    after = request.GET.get("after")
    image = queue.next_to_review(int(after) if after and after.isdigit() else None)
    if image is None:
        return redirect(reverse("review-list") + "?empty=1")
    return redirect("review-image", image_id=image.pk)


@role_required(ADMIN, REVIEWER)
@require_GET
def review_page(request, image_id):
    """The labels over the image, the revision history with a visual diff, accept / reject."""
    image = get_object_or_404(Image.objects.select_related("participant", "annotation__assignee"), pk=image_id)
    config = _page_config(request, image, role_of(request.user), listUrl=reverse("review-list"),
                          nextUrl=reverse("review-next") + f"?after={image.pk}")
    annotation = image.annotation
    return render(request, "labeling/review.html", {
        "image": image, "config": config, "submitted": annotation.status == Annotation.Status.SUBMITTED,
        "nothing_to_accept": NOTHING_TO_ACCEPT if not annotation.geometry.get("nails") else "",
    })
