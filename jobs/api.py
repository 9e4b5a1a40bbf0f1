"""REST API for jobs: list, detail, start (202 + poll), cancel."""
from django.conf import settings
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.permissions import IsAdminRole, IsStaffRole
from accounts.roles import role_of

from .models import Job
from .registry import JobArgumentError, get_job_kind
from .runner import BrokerUnavailable, cancel_job, enqueue_job
from .serializers import JobCreateSerializer, JobSerializer


def start_job_response(kind: str, arguments: dict, user) -> Response:
    """Start a job and answer as every job-starting endpoint does: 202 + the Job to poll (Location
    header), 409 with the running one for a duplicate, 400 for bad arguments, 503 without a broker.

    Path arguments are confined to the server's import and export folders (``JobKind.reads`` / ``writes``);
    only management commands reach other paths."""
    try:
        arguments = get_job_kind(kind).confine_paths(arguments, read_root=settings.NAILSET_IMPORT_DIR,
                                                     write_root=settings.NAILSET_EXPORT_DIR)
        job, created = enqueue_job(kind, arguments, user=user)
    except JobArgumentError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    except BrokerUnavailable as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    data = JobSerializer(job).data
    if not created:
        return Response({"detail": f"the same job is already {job.status} as job {job.pk}", "job": data}, status=status.HTTP_409_CONFLICT)
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/jobs/{job.pk}/"})


class JobFilter(filters.FilterSet):
    class Meta:
        model = Job
        fields = ["kind", "status"]


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Admins see and steer every job; annotators and reviewers see the jobs they started."""

    serializer_class = JobSerializer
    filterset_class = JobFilter
    permission_classes = [IsStaffRole]
    queryset = Job.objects.none()  # for the schema; get_queryset decides per user

    def get_queryset(self):
        jobs = Job.objects.select_related("created_by")
        if role_of(self.request.user) == "admin":
            return jobs
        return jobs.filter(created_by=self.request.user)

    def get_permissions(self):
        if self.action in ("create", "cancel"):
            return [IsAdminRole()]
        return super().get_permissions()

    @extend_schema(request=JobCreateSerializer, responses={202: JobSerializer, 409: JobSerializer})
    def create(self, request):
        body = JobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return start_job_response(body.validated_data["kind"], body.validated_data["arguments"], request.user)

    @extend_schema(request=None, responses={202: JobSerializer, 409: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        if not job.is_active:
            return Response({"detail": f"job {job.pk} already ended ({job.status})", "job": JobSerializer(job).data}, status=status.HTTP_409_CONFLICT)
        job = cancel_job(job)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
