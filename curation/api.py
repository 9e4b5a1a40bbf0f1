"""REST API for training data: snapshots (build, export, download), participant splits, statistics."""
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdminRole, IsReviewerOrAdmin
from dataset.formats import EXPORTERS, NAME_CHOICES
from jobs.api import start_job_response
from jobs.serializers import JobSerializer

from .models import Export, ParticipantSplit, Snapshot
from .serializers import (ParticipantSplitSerializer, SnapshotCreateSerializer, SnapshotExportSerializer,
                          SnapshotSerializer)
from .snapshots import pin_participant
from .stats import dataset_stats


class SnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Snapshots are immutable: build a new one (a job), export it (a job), download the exports."""

    serializer_class = SnapshotSerializer
    lookup_field = "name"
    queryset = Snapshot.objects.select_related("created_by").prefetch_related("exports__snapshot")

    def get_permissions(self):
        return [IsAdminRole()] if self.action in ("create", "export", "download") else [IsReviewerOrAdmin()]

    @extend_schema(request=SnapshotCreateSerializer, responses={202: JobSerializer})
    def create(self, request):
        body = SnapshotCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return start_job_response("snapshot", dict(body.validated_data), request.user)

    @extend_schema(request=SnapshotExportSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def export(self, request, name=None):
        snapshot = self.get_object()
        body = SnapshotExportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        names = body.validated_data["names"]
        return start_job_response("export_snapshot", {"snapshot": snapshot.name, "format": body.validated_data["format"],
                                                      **({"names": names} if names != NAME_CHOICES[0] else {})}, request.user)

    @extend_schema(parameters=[OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(EXPORTERS))],
                   responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"], url_path=r"download/(?P<fmt>[a-z]+)")
    def download(self, request, name=None, fmt=None):
        """The zip, streamed from disk in constant memory. 410 when the export was withdrawn (a participant
        in it erased their data), with the reason: export the snapshot again to get one without them."""
        snapshot = self.get_object()
        export = Export.objects.filter(snapshot=snapshot, format=fmt).order_by("-created_at", "-id").first()
        if export is not None and not export.file and export.withdrawn_at:
            return Response({"detail": f"the {fmt} export of {snapshot.name} was withdrawn on {export.withdrawn_at:%Y-%m-%d}: "
                                       f"{export.withdrawn_reason}. Export the snapshot again to get one without that data.",
                             "withdrawn_at": export.withdrawn_at, "withdrawn_reason": export.withdrawn_reason}, status=410)
        if export is None or not export.file:
            return Response({"detail": f"no {fmt} export of {snapshot.name} yet: start one with POST .../export/"}, status=404)
        return FileResponse(export.file.open("rb"), as_attachment=True, filename=f"{snapshot.name}-{export.format}.zip",
                            content_type="application/zip")


class ParticipantSplitViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Where each participant is; ``POST`` pins a participant to a split (admins)."""

    serializer_class = ParticipantSplitSerializer
    queryset = ParticipantSplit.objects.select_related("participant").order_by("participant__code")
    filterset_fields = ["split", "pinned"]

    def get_permissions(self):
        return [IsAdminRole()] if self.action == "create" else [IsReviewerOrAdmin()]

    def create(self, request):
        body = ParticipantSplitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = pin_participant(body.validated_data["participant"], body.validated_data["split"])
        return Response(ParticipantSplitSerializer(row).data, status=201)


class DatasetStatsView(APIView):
    permission_classes = [IsReviewerOrAdmin]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(dataset_stats())
