"""REST API of model exports (``/api/model-artifacts/``):

- ``GET  /api/model-artifacts/?model_version=NAME&format=tfjs``  list (reviewers, admins)
- ``POST /api/model-artifacts/ {"model_version", "format", "precision"?, "size"?, "quantize"?}``  start an
  export job: 202 + the job to poll (admins)
- ``GET  /api/model-artifacts/{id}/``  one artifact: metadata block and parity report
- ``GET  /api/model-artifacts/{id}/download/``  the artifact as a zip
- ``GET  /api/model-artifacts/{id}/files/{path}``  one file of the unpacked artifact (TF.js model.json and
  weight shards, the parity reference) for the browser; annotators too (the try-on page loads TF.js models)
- ``POST /api/model-artifacts/{id}/browser-parity/ {"runs": {...}}``  record a browser's TF.js runs
  (the harness's result) in the parity report (reviewers, admins)
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdminRole, IsReviewerOrAdmin, IsStaffRole
from jobs.api import start_job_response
from jobs.serializers import JobSerializer

from ..models import EXPORT_FORMAT_CHOICES, ModelArtifact
from .core import artifact_folder, clean_browser_runs, record_browser_runs


class ModelArtifactSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(slug_field="name", read_only=True)
    variant = serializers.CharField(read_only=True)
    download = serializers.SerializerMethodField()
    files_url = serializers.SerializerMethodField()
    job = serializers.PrimaryKeyRelatedField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ModelArtifact
        fields = ["id", "model_version", "format", "variant", "options", "passed", "size_bytes", "metadata", "parity",
                  "download", "files_url", "job", "created_by", "created_at"]
        read_only_fields = fields

    def get_download(self, artifact) -> str:
        return f"/api/model-artifacts/{artifact.pk}/download/"

    def get_files_url(self, artifact) -> str:
        return f"/api/model-artifacts/{artifact.pk}/files/"


class ExportStartSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    format = serializers.ChoiceField(choices=EXPORT_FORMAT_CHOICES)
    precision = serializers.ChoiceField(choices=["fp16", "fp32"], required=False)
    size = serializers.CharField(required=False, help_text="Core ML fixed input size HxW (multiples of 32)")
    quantize = serializers.ChoiceField(choices=["float16", "uint8"], required=False)
    browser = serializers.BooleanField(required=False, help_text="TF.js: run it in headless Chromium (default: when "
                                                                 "the worker has Chromium)")


class ModelArtifactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ModelArtifactSerializer
    queryset = ModelArtifact.objects.select_related("model_version", "created_by")

    def get_permissions(self):
        if self.action == "create":
            return [IsAdminRole()]
        return [IsReviewerOrAdmin()]

    def get_queryset(self):
        queryset = super().get_queryset()
        params = self.request.query_params
        if params.get("model_version"):
            queryset = queryset.filter(model_version__name=params["model_version"])
        if params.get("format"):
            queryset = queryset.filter(format=params["format"])
        return queryset

    @extend_schema(parameters=[OpenApiParameter("model_version", str), OpenApiParameter("format", str)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ExportStartSerializer, responses={202: JobSerializer})
    def create(self, request):
        """Start an export job (queue "export")."""
        body = ExportStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        arguments = {"model": data.pop("model_version"), **{k: v for k, v in data.items() if v not in (None, "")}}
        return start_job_response("export_model", arguments, request.user)

    @extend_schema(responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The artifact as a zip archive (model files + nailset-export.json)."""
        artifact = self.get_object()
        if not artifact.file:
            raise Http404("this artifact has no file")
        return FileResponse(artifact.file.open("rb"), as_attachment=True, filename=Path(artifact.file.name).name,
                            content_type="application/zip")

    @extend_schema(request=inline_serializer("BrowserParity", {"runs": serializers.JSONField()}),
                   responses={200: ModelArtifactSerializer})
    @action(detail=True, methods=["post"], url_path="browser-parity")
    def browser_parity(self, request, pk=None):
        """Record a browser's runs of a TF.js artifact (what the artifact's TF.js page measures)."""
        artifact = self.get_object()
        if artifact.format != "tfjs":
            return Response({"detail": "browser parity is for TF.js artifacts"}, status=400)
        try:
            runs = clean_browser_runs(request.data.get("runs"))
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=400)
        artifact = record_browser_runs(artifact, runs)
        return Response(ModelArtifactSerializer(artifact).data)


class ArtifactFileView(APIView):
    """``GET /api/model-artifacts/{id}/files/{path}``: one file of the unpacked artifact (TF.js model.json and
    weight shards, the parity reference) for browsers; no listing, nothing outside the artifact's folder.
    A plain path (training/exports/urls.py), not a router action: the router's format suffixes would eat
    the file extensions."""

    permission_classes = [IsStaffRole]

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, pk: int, name: str):
        artifact = ModelArtifact.objects.filter(pk=pk).first()
        if artifact is None or not artifact.folder:
            raise Http404("no such artifact")
        root = artifact_folder(artifact).resolve()
        path = (root / name).resolve()
        if root not in path.parents or not path.is_file():
            raise Http404("no such file in this artifact")
        content_type = "application/json" if path.suffix == ".json" else (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        response = FileResponse(open(path, "rb"), content_type=content_type)
        response["Cache-Control"] = "private, max-age=3600"
        return response
