"""The jobs page (admins): every job with its kind, status, progress, message, who, when and log tail,
filters by kind and status, cancel for queued and running jobs. The page polls ``/api/jobs/`` (the same
filters) to stay current; cancelling goes through ``POST /api/jobs/{id}/cancel/``."""
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.decorators import role_required
from accounts.roles import ADMIN

from .models import Job
from .registry import JOB_KINDS

PAGE_SIZE = 100


def kind_choices() -> list[tuple[str, str]]:
    """``(name, title)`` of every registered kind and of every kind a stored job has, by name."""
    titles = {name: kind.title or name for name, kind in JOB_KINDS.items()}
    for name in Job.objects.order_by().values_list("kind", flat=True).distinct():
        titles.setdefault(name, name)
    return sorted(titles.items())


@role_required(ADMIN, message="only admins see every job (your own jobs are at /api/jobs/)")
@require_GET
def jobs_page(request):
    kinds = kind_choices()
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    if kind and kind not in dict(kinds):
        return HttpResponseBadRequest(f"unknown job kind {kind!r}: one of {', '.join(name for name, _ in kinds)}",
                                      content_type="text/plain")
    if status and status not in Job.Status.values:
        return HttpResponseBadRequest(f"unknown job status {status!r}: one of {', '.join(Job.Status.values)}",
                                      content_type="text/plain")
    jobs = Job.objects.select_related("created_by")
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    return render(request, "jobs/jobs.html", {
        "jobs": jobs[:PAGE_SIZE], "total": jobs.count(), "page_size": PAGE_SIZE,
        "kinds": kinds, "statuses": Job.Status.values, "kind": kind, "status": status,
        "titles": dict(kinds),
    })
