"""REST API (Django REST framework) for participants, uploads, images and annotations.

The rules live in plain functions (``annotations.py``, ``intake.py``); these views translate HTTP.
"""
import json

from django.db.models import Count, Func, IntegerField
from django.db.models.fields.json import KeyTransform
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdminRole, IsParticipantOrAdmin, IsReviewerOrAdmin, IsStaffRole
from accounts.roles import PARTICIPANT, role_of
from dataset.geometry import empty_geometry, normalize_geometry, validate_geometry
from jobs.runner import BrokerUnavailable, enqueue_job

from . import annotations, click_nail, queue, raster_overlays, suggestions
from .intake import RejectedFile, store_upload
from .models import Annotation, Image, Participant, Upload
from .erasure import erase_participant
from .participants import ParticipantImportError, import_participants_csv
from .serializers import (AnnotationSaveSerializer, AnnotationSerializer, AssignSerializer, CompareSerializer, ImageSerializer,
                          ParticipantCsvSerializer, ParticipantSerializer, QueueCountsSerializer, QueueNextSerializer,
                          RasterRequestSerializer, RevisionSerializer, ReviewSerializer, UploadCreateSerializer, UploadSerializer)


class PNGRenderer(BaseRenderer):
    """Lets clients that ask for ``Accept: image/png`` reach the raster overlay (errors stay JSON)."""

    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


class JSONArrayLength(Func):
    """Length of a JSON array, 0 for null: jsonb_array_length on PostgreSQL, json_array_length on SQLite."""

    output_field = IntegerField()

    def as_sql(self, compiler, connection, **extra):
        function = "jsonb_array_length" if connection.vendor == "postgresql" else "json_array_length"
        sql, params = super().as_sql(compiler, connection, function=function, **extra)
        return f"COALESCE({sql}, 0)", params


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

    def _erase(self, request):
        participant = self.get_object()
        counts = erase_participant(participant, requested_by=f"admin {request.user.username} (API)")
        data = self.get_serializer(self.get_queryset().get(pk=participant.pk)).data
        return Response({**data, "erased": counts})

    @extend_schema(request=None, responses={200: ParticipantSerializer})
    @action(detail=True, methods=["post"])
    def erase(self, request, code=None):
        """Erase everything derived from the participant's photos (labeling/erasure.py): uploads, images,
        labels, snapshot rows, exports, predictions, job records. The code stays, marked erased;
        ``erased`` counts what went."""
        return self._erase(request)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, *args, **kwargs):
        """Erases, as ``POST .../erase/`` does: the row stays (marked erased, with what went) so the erasure
        is on record; ``GET`` it to see ``erased_at``."""
        self._erase(request)
        return Response(status=204)

    @extend_schema(request=None, responses={200: ParticipantSerializer, 409: OpenApiResponse(description="the participant was erased")})
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request, code=None):
        participant = self.get_object()
        if participant.erased_at:
            return Response({"detail": f"participant {participant.code} was erased; their link only says so and gets no new one"},
                            status=409)
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
                   responses={201: UploadSerializer, 200: UploadSerializer, 400: OpenApiResponse(description="the file was refused"),
                              413: OpenApiResponse(description="over the size limit: refused while streaming (labeling/upload_limits.py)")})
    def create(self, request, *args, **kwargs):
        # Consent is checked before the body is read; the body is read through the upload limits
        # (settings.FILE_UPLOAD_HANDLERS): an oversized one stops with 413 before reaching the disk.
        if role_of(request.user) == PARTICIPANT and request.user.participant.consent_at is None:
            return Response({"detail": "please give your consent on your upload page before sending photos"}, status=403)
        body = UploadCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if role_of(request.user) == PARTICIPANT:
            participant = request.user.participant
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
        images = annotations.visible_images(self.request.user).select_related(
            "participant", "annotation", "annotation__assignee").order_by("pk")
        if self.action == "annotation":
            if self.request.method == "PUT":  # save_annotation reads the row itself
                return images.defer("annotation__geometry")
            return images.select_related("annotation__reviewer", "annotation__updated_by")
        if self.action == "click_nail":  # the labels, read with the image: the permission check and the proposal use them
            return images
        # Lists count nails in SQL instead of decoding every row's geometry (see docs/benchmarks.md).
        return images.defer("annotation__geometry").annotate(nail_count=JSONArrayLength(KeyTransform("nails", "annotation__geometry")))

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
                   responses={200: AnnotationSerializer,
                              400: OpenApiResponse(description="a submission that is not valid and complete, or JSON no drawing makes: "
                                                               "per-nail errors (a draft keeps invalid shapes in invalid_shapes)"),
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

    @extend_schema(request={"application/json": {"type": "object", "properties": {"nails": {
                       "type": "array", "items": {"type": "object"},
                       "description": "POST: the page's nails (saved or not) to suggest for"}}, "required": ["nails"]}},
                   responses={200: OpenApiResponse(description=(
        "{image, version, nails: [{index, id, missing, suggested, suggestion}]}: per nail of the current labels "
        "(POST: of the nails sent), the fields not confirmed, its suggested marks and the suggestion (finger, hand, "
        "digit, base, tip, confidence, direction_confidence, reasons)")),
                              400: OpenApiResponse(description="POST: bad nails, not a list of nails"),
                              404: OpenApiResponse(description="no such image, or not yours to see")})
    @action(detail=True, methods=["get", "post"], url_path="label-suggestions")
    def label_suggestions(self, request, pk=None):
        """Suggested finger and base/tip for each nail of the image's labels (``labeling/suggestions.py``),
        computed from the photo and the confirmed fields; nothing is saved. ``POST {"nails": [...]}``: for the
        page's nails instead (saved or not: the tool asks as soon as a nail is drawn; a nail still being drawn
        is left out, anything that is not a nail answered 400)."""
        image = self.get_object()
        if request.method == "GET":
            return Response(suggestions.suggestions_for(image))
        body = request.data if isinstance(request.data, dict) else {}
        try:
            nails = suggestions.page_nails(body.get("nails"), image.width, image.height)
        except suggestions.BadNails as exc:
            return Response({"nails": [str(exc)]}, status=400)
        return Response(suggestions.suggestions_for(image, nails))

    @extend_schema(request={"application/json": {"type": "object", "properties": {
                       "points": {"type": "array",
                                  "items": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}},
                       "nails": {"type": "array", "items": {"type": "object"},
                                 "description": "the page's nails (saved or not) as context for the finger and base/tip; "
                                                "default: the saved labels"}},
                       "required": ["points"]}},
                   responses={200: OpenApiResponse(description=(
                       "{nail: {polygon, finger, base, tip, suggested} | null, confidence, source: model | image, model, "
                       "suggestion}: the proposed nail (nothing is saved)")),
                              400: OpenApiResponse(description="bad points: not a list of [x, y, 1 | 0] in the image with a "
                                                               "positive one; or bad nails: not a list of nails"),
                              403: OpenApiResponse(description="not yours to edit"),
                              404: OpenApiResponse(description="no such image, or not yours to see")})
    @action(detail=True, methods=["post"], url_path="click-nail")
    def click_nail(self, request, pk=None):
        """Click a nail, get the nail (``labeling/click_nail.py``): ``{"points": [[x, y, 1], [x, y, 0], ...]}`` in
        image pixels (1: inside the nail, 0: outside it), optionally ``"nails"`` (the page's labels, saved or not)
        -> the proposed polygon, finger and base/tip. Allowed to whoever may edit the image's labels."""
        image = self.get_object()
        current = image.annotation
        try:
            annotations.check_may_edit(request.user, current)
        except annotations.NotAllowed as exc:
            return Response({"detail": str(exc)}, status=403)
        body = request.data if isinstance(request.data, dict) else {}
        try:
            return Response(click_nail.click_nail(image, body.get("points"), current.geometry, body.get("nails")))
        except click_nail.BadPoints as exc:
            return Response({"points": [str(exc)]}, status=400)
        except suggestions.BadNails as exc:
            return Response({"nails": [str(exc)]}, status=400)
        except OSError as exc:  # the stored photo is missing or unreadable
            return Response({"detail": f"the photo could not be read: {exc}"}, status=409)

    @extend_schema(request=RasterRequestSerializer,
                   responses={(200, "image/png"): bytes, 400: OpenApiResponse(description="invalid geometry: per-nail errors")})
    @action(detail=True, methods=["post"], renderer_classes=[JSONRenderer, PNGRenderer])
    def rasters(self, request, pk=None):
        """What the model will learn from these labels: the dataset rasterizer's foreground mask, finger
        classes or direction field of the posted geometry (usually the page's unsaved labels), as an RGBA
        PNG (transparent where there is nothing) whose longest side is at most ``max_size``. Headers:
        ``X-Raster-Info`` (JSON: size, pixel counts, overlapping nail pairs). Nothing is saved."""
        image = self.get_object()
        body = RasterRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        geometry = body.validated_data["geometry"]
        report = validate_geometry(geometry, image.width, image.height)
        if not report.ok:
            return Response({"detail": "the labels are not valid: nothing to rasterize", **report.to_dict()}, status=400)
        png, info = raster_overlays.render_overlay(normalize_geometry(geometry), image.width, image.height,
                                                   body.validated_data["kind"], body.validated_data["max_size"])
        response = HttpResponse(png, content_type="image/png")
        response["X-Raster-Info"] = json.dumps(info, separators=(",", ":"))
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(parameters=[OpenApiParameter("a", int, description="version of the first revision (0: no labels)"),
                               OpenApiParameter("b", int, required=False, description="version of the second one (default: the current version)")],
                   responses={200: CompareSerializer, 400: OpenApiResponse(description="unknown version")})
    @action(detail=True, methods=["get"])
    def compare(self, request, pk=None):
        """Agreement of two revisions on the rasterized labels: foreground IoU, finger-class agreement and
        nail-to-nail matches with their IoU (e.g. a model's pre-labels against the human labels)."""
        image = self.get_object()
        annotation = image.annotation
        try:
            a = int(request.query_params.get("a", ""))
            b = int(request.query_params.get("b", annotation.version))
        except ValueError:
            return Response({"detail": "'a' (and optionally 'b') must be revision versions"}, status=400)
        geometries = {0: empty_geometry()}
        geometries.update(dict(annotation.revisions.filter(version__in=[a, b]).values_list("version", "geometry")))
        missing = [v for v in (a, b) if v not in geometries]
        if missing:
            return Response({"detail": f"no revision with version {missing[0]}"}, status=400)
        result = raster_overlays.compare(geometries[a], geometries[b], image.width, image.height)
        return Response({"a": a, "b": b, **result})


QUEUE_PARAMETER = OpenApiParameter("queue", str, enum=list(queue.QUEUES), required=False, description=(
    "labels (default): the annotation queue; incomplete: submitted or accepted labels with a nail that lacks its "
    "finger or base/tip (labeling/queue.py), whose counts are {mine, open, remaining}"))


def _queue_or_400(request):
    name = request.query_params.get("queue", "labels")
    if name not in queue.QUEUES:
        return None, Response({"queue": [f"unknown queue {name[:40]!r}: use one of {', '.join(queue.QUEUES)}"]}, status=400)
    return name, None


class QueueView(APIView):
    """The annotator's queue: how many images are done and how many remain (``?queue=incomplete``: the
    incomplete-labels queue)."""

    @extend_schema(parameters=[QUEUE_PARAMETER],
                   responses={200: QueueCountsSerializer, 400: OpenApiResponse(description="unknown queue"),
                              403: OpenApiResponse(description="reviewers have no queue")})
    def get(self, request):
        name, error = _queue_or_400(request)
        if error:
            return error
        try:
            counts = queue.incomplete_counts(request.user) if name == "incomplete" else queue.counts_for(request.user)
            return Response(counts.to_dict())
        except queue.QueueNotAllowed as exc:
            return Response({"detail": str(exc)}, status=403)


class QueueNextView(APIView):
    """Claim the next image: yours first (assigned, then rejected), then the oldest unclaimed one.
    Atomic: two annotators never get the same image. ``image`` is null when nothing is left."""

    @extend_schema(request=None, parameters=[QUEUE_PARAMETER],
                   responses={200: QueueNextSerializer, 400: OpenApiResponse(description="unknown queue"),
                              403: OpenApiResponse(description="reviewers have no queue")})
    def post(self, request):
        name, error = _queue_or_400(request)
        if error:
            return error
        try:
            if name == "incomplete":
                image, counts = queue.claim_next_incomplete(request.user), queue.incomplete_counts(request.user).to_dict()
            else:
                image, counts = queue.claim_next(request.user), queue.counts_for(request.user).to_dict()
        except queue.QueueNotAllowed as exc:
            return Response({"detail": str(exc)}, status=403)
        if image is None:
            return Response({"image": None, "annotation": None, "counts": counts})
        image = Image.objects.select_related("participant", "annotation", "annotation__assignee").get(pk=image.pk)
        return Response({"image": ImageSerializer(image).data, "annotation": AnnotationSerializer(image.annotation).data,
                         "counts": counts})
