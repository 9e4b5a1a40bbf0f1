"""REST API for training runs (start one: 202 + the job to poll; the presets it may name with their device, budget
and measured figure: ``GET /api/training-runs/presets/``), model versions, and the served model's
endpoint for other tools: ``POST /api/model-versions/<id or name>/predict`` (its old address,
``/api/models/<id or name>/predict``, redirects there for one release)."""
import numpy as np
from django.conf import settings
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FileUploadParser, FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdminRole, IsReviewerOrAdmin, IsStaffRole
from dataset.formats import FINGER_LABELS, UNKNOWN_LABEL
from jobs.api import start_job_response
from jobs.models import Job
from jobs.runner import BrokerUnavailable
from jobs.serializers import JobSerializer
from labeling.intake import RejectedFile, normalized_photo
from ml.train_presets import describe_presets

from .models import ModelVersion, TrainingRun
from .runs import run_for_job
from .serializers import (ModelVersionSerializer, PredictRequestSerializer, PredictResponseSerializer, TrainingPresetSerializer,
                          TrainingRunSerializer, TrainingStartSerializer)
from .serving import predict_picture, predictor_for


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

    @extend_schema(responses={200: TrainingPresetSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None)
    def presets(self, request):
        """``GET /api/training-runs/presets/``: the presets a run may name, each with the device it is meant for,
        its budget and what it was measured at (ml.train_presets)."""
        return Response(describe_presets())


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.all()
    permission_classes = [IsReviewerOrAdmin]


def model_version_for(ref: str) -> ModelVersion:
    lookup = {"pk": int(ref)} if ref.isdigit() else {"name": ref}
    return get_object_or_404(ModelVersion, **lookup)


class ModelPredictView(APIView):
    """``POST /api/model-versions/<id or name>/predict`` with a photo (multipart field ``image``, or the raw bytes):
    the model's nails as JSON, at the photo's own pixel coordinates (EXIF orientation applied). Nothing is
    stored. ``?size=`` sets the network's input (longer side; default: the model's evaluation size).
    Annotators, reviewers and admins (as when it was pre-labeling's ``/api/models/...``)."""

    permission_classes = [IsStaffRole]
    parser_classes = [MultiPartParser, FormParser, FileUploadParser]

    @extend_schema(request={"multipart/form-data": PredictRequestSerializer},
                   parameters=[OpenApiParameter("size", int, required=False, description="network input, longer side (64..2048)")],
                   responses={200: PredictResponseSerializer, 400: OpenApiResponse(description="not a usable photo"),
                              404: OpenApiResponse(description="no such model version")})
    def post(self, request, ref):
        version = model_version_for(ref)
        upload = request.FILES.get("image") or request.FILES.get("file")
        if upload is None:
            return Response({"image": ["send the photo as the multipart field 'image'"]}, status=400)
        if upload.size > settings.NAILSET_MAX_PHOTO_BYTES:
            return Response({"image": [f"the photo is larger than {settings.NAILSET_MAX_PHOTO_BYTES // (1024 * 1024)} MB"]}, status=400)
        size = request.query_params.get("size")
        if size is not None:
            if not size.isdigit() or not 64 <= int(size) <= 2048:
                return Response({"size": ["size must be a whole number from 64 to 2048"]}, status=400)
            size = int(size)
        try:
            picture, _ = normalized_photo(upload)
        except RejectedFile as exc:
            return Response({"image": [str(exc)]}, status=400)
        rgb = np.asarray(picture.convert("RGB"))
        result = predict_picture(predictor_for(version), rgb, size)
        nails = []
        for nail in result.nails:
            d = nail.to_dict()
            nails.append({"polygon": d["polygon"], "class": nail.finger,
                          "class_name": FINGER_LABELS.get(nail.finger, UNKNOWN_LABEL),
                          "base": d["base"], "tip": d["tip"], "confidence": d["confidence"],
                          "class_confidence": d["class_confidence"], "direction_source": nail.direction_source})
        return Response({"model": version.name, "model_id": version.pk, "width": rgb.shape[1], "height": rgb.shape[0],
                         "nails": nails, "uncertainty": round(result.uncertainty, 5), "input_size": list(result.input_size),
                         "seconds": round(result.seconds, 4)})


class LegacyModelPredictRedirect(APIView):
    """``/api/models/<id or name>/predict``, the predict endpoint's old address: answers 308 Permanent Redirect
    to ``/api/model-versions/<id or name>/predict`` (query string kept; 308 keeps the method and the body, so
    a client that follows redirects posts its photo again there, where the permissions are checked). Kept
    for one release, then removed: point clients at the new address."""

    authentication_classes = []  # nothing is read or done here: the endpoint it redirects to checks who asks
    permission_classes = [AllowAny]

    @extend_schema(deprecated=True, request=None,
                   responses={308: OpenApiResponse(description="to /api/model-versions/<id or name>/predict")})
    def post(self, request, ref):
        location = reverse("api-model-predict", kwargs={"ref": ref})
        if request.META.get("QUERY_STRING"):
            location += "?" + request.META["QUERY_STRING"]
        response = HttpResponseRedirect(location)
        response.status_code = 308
        return response
