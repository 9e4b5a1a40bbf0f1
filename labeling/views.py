"""Pages: the participant's upload page at /u/<token>/ (no account needed)."""
from django.conf import settings
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .models import Image, Participant
from .participants import erase_participant, record_consent


def _participant_or_error(request, token):
    participant = Participant.objects.filter(upload_token=token).first()
    if participant is None:
        return None, render(request, "labeling/participant_problem.html",
                            {"problem": "This upload link is not valid. It may have been replaced by a new one: ask the study team."}, status=404)
    problem = participant.token_problem()
    if problem:
        return None, render(request, "labeling/participant_problem.html", {"problem": problem[0].upper() + problem[1:] + "."}, status=410)
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


@require_POST
def participant_erase(request, token):
    participant, error = _participant_or_error(request, token)
    if error:
        return error
    if request.POST.get("confirm") != "DELETE":
        return render(request, "labeling/participant_problem.html",
                      {"problem": "To delete your data, type DELETE in the box and press the button again."}, status=400)
    counts = erase_participant(participant)
    return render(request, "labeling/participant_erased.html", {"counts": counts})


@require_GET
def participant_thumbnail(request, token, image_id):
    participant, error = _participant_or_error(request, token)
    if error:
        raise Http404("not found")
    image = Image.objects.filter(pk=image_id, participant=participant).first()
    if image is None or not image.thumbnail:
        raise Http404("not found")
    return FileResponse(image.thumbnail.open("rb"), content_type="image/jpeg")
