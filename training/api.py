"""REST API for training runs (start one: 202 + the job to poll) and model versions."""
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets

from jobs.api import start_job_response
from jobs.serializers import JobSerializer
from labeling.permissions import IsAdminRole, IsReviewerOrAdmin

from .models import ModelVersion, TrainingRun
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
        return start_job_response("train", arguments, request.user)


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.all()
    permission_classes = [IsReviewerOrAdmin]
