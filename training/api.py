"""REST API for training runs (start one: 202 + the job to poll) and model versions."""
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from accounts.permissions import IsAdminRole, IsReviewerOrAdmin
from jobs.api import start_job_response
from jobs.models import Job
from jobs.runner import BrokerUnavailable
from jobs.serializers import JobSerializer

from .models import ModelVersion, TrainingRun
from .runs import run_for_job
from .serializers import ModelVersionSerializer, TrainingRunSerializer, TrainingStartSerializer


class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TrainingRunSerializer
    queryset = TrainingRun.objects.select_related("snapshot", "job__created_by", "created_by", "model_version")

    def get_permissions(self):
        return [IsAdminRole()] if self.action == "create" else [IsReviewerOrAdmin()]

    @extend_schema(request=TrainingStartSerializer, responses={202: JobSerializer})
    def create(self, request):
        body = TrainingStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        arguments = {key: value for key, value in body.validated_data.items() if value not in (None, {})}
        # The run is made with its job, in one transaction, and the job is sent to the workers once both
        # are committed: the runs list shows it at once (queued), and the worker finds it (runs.run_for_job).
        run = None
        try:
            with transaction.atomic():
                response = start_job_response("train", arguments, request.user)
                if response.status_code in (status.HTTP_202_ACCEPTED, status.HTTP_409_CONFLICT):
                    job_id = response.data["id"] if response.status_code == status.HTTP_202_ACCEPTED else response.data["job"]["id"]
                    run = run_for_job(Job.objects.get(pk=job_id))
        except BrokerUnavailable as exc:  # raised when the transaction commits: the job is failed, the run goes
            if run is not None:
                TrainingRun.objects.filter(pk=run.pk).delete()
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        if run is not None:
            response.data["training_run"] = run.pk
        return response


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.all()
    permission_classes = [IsReviewerOrAdmin]
