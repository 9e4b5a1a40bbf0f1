"""Site-wide pages: health check, the start page and the favicon."""
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.roles import role_of
from jobs.models import Job
from labeling.models import Annotation, Image, Participant

from .health import platform_health

FAVICON = Path(__file__).with_name("favicon.svg").read_bytes()


@never_cache
@require_GET
def healthz(request):
    """200 when the database, the broker and at least one worker answer; 503 otherwise."""
    report = platform_health()
    return JsonResponse(report, status=200 if report["ok"] else 503)


@login_required
def home(request):
    role = role_of(request.user)
    counts = {status: 0 for status, _ in Annotation.Status.choices}
    for row in Annotation.objects.values("status").order_by().annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    context = {
        "role": role,
        "counts": counts,
        "image_total": Image.objects.count(),
        "participant_total": Participant.objects.count(),
        "recent_jobs": Job.objects.select_related("created_by")[:10] if role == "admin" else [],
    }
    return render(request, "home.html", context)


@require_GET
def favicon(request):
    """The site's icon (SVG), at the address browsers ask for on every page."""
    response = HttpResponse(FAVICON, content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response
