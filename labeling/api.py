"""REST API (Django REST framework) for participants, uploads, images and annotations.

The rules live in plain functions (``annotations.py``, ``intake.py``); these views translate HTTP.
"""
from django.db.models import Count
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from jobs.runner import BrokerUnavailable, enqueue_job

from . import annotations
from .intake import RejectedFile, store_upload
from .models import Annotation, Image, Participant, Upload
from .participants import ParticipantImportError, erase_participant, import_participants_csv
from .permissions import PARTICIPANT, IsAdminRole, IsParticipantOrAdmin, IsReviewerOrAdmin, IsStaffRole, role_of
from .serializers import (AnnotationSaveSerializer, AnnotationSerializer, AssignSerializer, ImageSerializer,
                          ParticipantCsvSerializer, ParticipantSerializer, RevisionSerializer, ReviewSerializer, UploadCreateSerializer,
                          UploadSerializer)


class ParticipantViewSet(viewsets.ModelViewSet):
    """Admins only: participants and their upload links."""

    serializer_class = ParticipantSerializer
    permission_classes = [IsAdminRole]
    lookup_field = "code"
    filterset_fields = ["code"]

    def get_queryset(self):
        return Participant.objects.annotate(image_count=Count("images", distinct=True),
                                            upload_count=Count("uploads", distinct=True)).order_by("code")

    @extend_schema(request={"multipart/form-data": ParticipantCsvSerializer}, responses={201: ParticipantSerializer(many=True)})
    @action(detail=False, methods=["post"], url_path="import-csv", parser_classes=[MultiPartParser])
    def import_csv(self, request):
        body = ParticipantCsvSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            text = body.validated_data["file"].read().decode("utf-8-sig")
            created = import_participants_csv(text)
        except UnicodeDecodeError:
            return Response({"file": ["the CSV must be UTF-8 text"]}, status=400)
        except ParticipantImportError as exc:
            return Response({"file": [str(exc)]}, status=400)
        codes = [p.code for p in created]
        return Response(self.get_serializer(self.get_queryset().filter(code__in=codes), many=True).data, status=201)

    @extend_schema(request=None, responses={200: ParticipantSerializer})
    @action(detail=True, methods=["post"])
    def erase(self, request, code=None):
        """Remove every file, image, annotation and revision of the participant."""
        participant = self.get_object()
        counts = erase_participant(participant)
        data = self.get_serializer(self.get_queryset().get(pk=participant.pk)).data
        return Response({**data, "erased": counts})

    @extend_schema(request=None, responses=ParticipantSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request, code=None):
        participant = self.get_object()
        participant.rotate_token()
        return Response(self.get_serializer(self.get_queryset().get(pk=participant.pk)).data)


class UploadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Participants upload with their token (``X-Upload-Token``) and see their own uploads; admins and
    reviewers see all of them."""

    serializer_class = UploadSerializer
    parser_classes = [MultiPartParser, FormParser]
    filterset_fields = ["status", "kind"]

    def get_permissions(self):
        if self.action == "create":
            return [IsParticipantOrAdmin()]
        if role_of(self.request.user) == PARTICIPANT:
            return [IsParticipantOrAdmin()]
        return [IsReviewerOrAdmin()]

    def get_queryset(self):
        uploads = Upload.objects.select_related("participant").prefetch_related("images")
        if role_of(self.request.user) == PARTICIPANT:
            return uploads.filter(participant=self.request.user.participant)
        return uploads

    @extend_schema(request={"multipart/form-data": UploadCreateSerializer},
                   responses={201: UploadSerializer, 200: UploadSerializer, 400: OpenApiResponse(description="the file was refused")})
    def create(self, request, *args, **kwargs):
        body = UploadCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if role_of(request.user) == PARTICIPANT:
            participant = request.user.participant
            if participant.consent_at is None:
                return Response({"detail": "please give your consent on your upload page before sending photos"}, status=403)
        else:
            participant = body.validated_data.get("participant")
            if participant is None:
                return Response({"participant": ["admins must name the participant they upload for"]}, status=400)
        uploaded = body.validated_data["file"]
        try:
            stored = store_upload(participant, uploaded, uploaded.name)
        except RejectedFile as exc:
            return Response({"file": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        headers = {}
        if stored.created:
            try:
                job, _ = enqueue_job("ingest_upload", {"upload_id": stored.upload.pk})
                headers["X-Job-Id"] = str(job.pk)
            except BrokerUnavailable as exc:
                return Response({"detail": f"the file was stored but could not be processed now: {exc}"}, status=503)
        data = UploadSerializer(Upload.objects.prefetch_related("images").get(pk=stored.upload.pk)).data
        data["duplicate"] = not stored.created
        return Response(data, status=status.HTTP_201_CREATED if stored.created else status.HTTP_200_OK, headers=headers)


class ImageFilter(filters.FilterSet):
    participant = filters.CharFilter(field_name="participant__code")
    status = filters.ChoiceFilter(field_name="annotation__status", choices=Annotation.Status.choices)
    assignee = filters.CharFilter(method="filter_assignee", help_text="a username, or 'none' for the open queue")

    class Meta:
        model = Image
        fields = ["participant", "status", "assignee"]

    def filter_assignee(self, queryset, name, value):
        if value == "none":
            return queryset.filter(annotation__assignee__isnull=True)
        return queryset.filter(annotation__assignee__username=value)


class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Images with their annotation: annotators see their own and the open queue, reviewers and admins
    see all. ``/annotation/`` reads and saves the labels (optimistic locking on ``version``)."""

    serializer_class = ImageSerializer
    filterset_class = ImageFilter
    permission_classes = [IsStaffRole]

    def get_queryset(self):
        return annotations.visible_images(self.request.user).select_related(
            "participant", "annotation", "annotation__assignee").order_by("pk")

    def _file(self, field_file, content_type):
        if not field_file:
            return Response({"detail": "no file stored"}, status=404)
        try:
            handle = field_file.open("rb")
        except FileNotFoundError:
            return Response({"detail": "the stored file is missing"}, status=404)
        return FileResponse(handle, content_type=content_type)

    @extend_schema(responses={(200, "image/*"): bytes})
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        image = self.get_object()
        return self._file(image.file, "image/png" if image.file.name.endswith(".png") else "image/jpeg")

    @extend_schema(responses={(200, "image/jpeg"): bytes})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, pk=None):
        return self._file(self.get_object().thumbnail, "image/jpeg")

    @extend_schema(methods=["GET"], responses=AnnotationSerializer)
    @extend_schema(methods=["PUT"], request=AnnotationSaveSerializer,
                   responses={200: AnnotationSerializer, 400: OpenApiResponse(description="invalid geometry, per-nail errors"),
                              403: OpenApiResponse(description="not yours to edit"),
                              409: OpenApiResponse(description="stale version; the body holds the current annotation")})
    @action(detail=True, methods=["get", "put"])
    def annotation(self, request, pk=None):
        image = self.get_object()
        if request.method == "GET":
            return Response(AnnotationSerializer(image.annotation).data)
        body = AnnotationSaveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = annotations.save_annotation(image, request.user, **body.validated_data)
        except annotations.AnnotationError as exc:
            return self._annotation_error(image, exc)
        data = AnnotationSerializer(result.annotation).data
        data["warnings"] = result.warnings
        return Response(data)

    def _annotation_error(self, image, exc):
        payload = {"detail": str(exc), **exc.extra}
        if isinstance(exc, annotations.VersionConflict):
            payload["current"] = AnnotationSerializer(Annotation.objects.get(image=image)).data
        return Response(payload, status=exc.status_code)

    @extend_schema(request=ReviewSerializer, responses={200: AnnotationSerializer, 409: OpenApiResponse(description="not submitted, or stale")})
    @action(detail=True, methods=["post"], permission_classes=[IsReviewerOrAdmin])
    def review(self, request, pk=None):
        image = self.get_object()
        body = ReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            annotation = annotations.review_annotation(image, request.user, **body.validated_data)
        except annotations.AnnotationError as exc:
            return self._annotation_error(image, exc)
        return Response(AnnotationSerializer(annotation).data)

    @extend_schema(responses=RevisionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def revisions(self, request, pk=None):
        image = self.get_object()
        revisions = image.annotation.revisions.select_related("author").order_by("-version")
        page = self.paginate_queryset(revisions)
        return self.get_paginated_response(RevisionSerializer(page, many=True).data)

    @extend_schema(request=AssignSerializer, responses=AnnotationSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAdminRole])
    def assign(self, request, pk=None):
        image = get_object_or_404(Image, pk=pk)
        body = AssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(AnnotationSerializer(annotations.assign_annotation(image, body.validated_data["assignee"])).data)
