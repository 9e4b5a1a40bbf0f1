"""REST API of pre-labeling: predictions and reviewers' decisions on them, correction metrics, promotions,
open events from the annotation page and the queue order. (The model endpoint for other tools,
``POST /api/model-versions/<id or name>/predict``, is training's: training/api.py.)"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import F
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdminRole, IsReviewerOrAdmin, IsStaffRole
from accounts.roles import ANNOTATOR, role_of
from jobs.api import start_job_response
from labeling.annotations import visible_images
from labeling.api import PNGRenderer

from . import drafts, metrics, proposals, uncertainty
from .inference import overlay_rgba_png
from .models import CorrectionRecord, OpenEvent, Prediction, PromotionDecision
from .serializers import (CorrectionSerializer, OpenSerializer, PredictionSerializer, PromotionRequestSerializer,
                          PromotionSerializer, QueueOrderSerializer, QueueOrderStateSerializer, RejectSerializer,
                          RunSerializer, SendSerializer)

ORDERINGS = {"confidence": ("confidence", "id"), "-confidence": ("-confidence", "-id"),
             "uncertainty": ("uncertainty", "id"), "-uncertainty": ("-uncertainty", "-id"),
             "created_at": ("created_at", "id"), "-created_at": ("-created_at", "-id")}


def ordered(queryset, key: str | None):
    """Predictions in one of ORDERINGS; a prediction without nails (no confidence) sorts as least confident."""
    fields = ORDERINGS.get(key or "-created_at", ORDERINGS["-created_at"])
    first = fields[0]
    if first.lstrip("-") == "confidence":
        expression = F("confidence").desc(nulls_last=True) if first.startswith("-") else F("confidence").asc(nulls_first=True)
        return queryset.order_by(expression, fields[1])
    return queryset.order_by(*fields)


class PredictionFilter(filters.FilterSet):
    model = filters.CharFilter(field_name="model_version__name")
    participant = filters.CharFilter(field_name="image__participant__code")

    class Meta:
        model = Prediction
        fields = ["image", "model", "participant", "review_state", "draft_state"]


class PredictionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Predictions of model versions on images, with per-nail confidence and the image's uncertainty.
    Reviewers and admins see all and decide on drafts (accept, send, reject); annotators see those of the
    images they may open. ``?ordering=`` confidence, -confidence, uncertainty, -uncertainty, created_at,
    -created_at (default)."""

    serializer_class = PredictionSerializer
    filterset_class = PredictionFilter
    permission_classes = [IsStaffRole]
    queryset = Prediction.objects.none()

    def get_queryset(self):
        predictions = Prediction.objects.select_related("model_version", "image__participant", "reviewed_by").defer("overlay_png")
        if role_of(self.request.user) == ANNOTATOR:
            predictions = predictions.filter(image__in=visible_images(self.request.user))
        if self.action == "overlay":
            predictions = predictions.defer(None)
        return ordered(predictions, self.request.query_params.get("ordering"))

    def retrieve(self, request, *args, **kwargs):
        prediction = self.get_object()
        data = self.get_serializer(prediction).data
        data["human_agreement"] = human_agreement(prediction)
        return Response(data)

    @extend_schema(parameters=[OpenApiParameter("max_size", int, required=False)],
                   responses={(200, "image/png"): bytes})
    @action(detail=True, methods=["get"], renderer_classes=[PNGRenderer, JSONRenderer])
    def overlay(self, request, pk=None):
        """The nail probability as a transparent PNG (magenta, opacity = probability) to lay over the image."""
        prediction = self.get_object()
        try:
            max_size = int(request.query_params.get("max_size", 0)) or None
        except ValueError:
            max_size = None
        response = HttpResponse(overlay_rgba_png(bytes(prediction.overlay_png), max_size), content_type="image/png")
        response["Cache-Control"] = "private, max-age=300"
        return response

    def _decide(self, request, func, **extra):
        prediction = self.get_object()
        try:
            prediction = func(prediction, request.user, **extra)
        except drafts.DraftError as exc:
            return Response({"detail": str(exc)}, status=exc.status_code)
        return Response(self.get_serializer(prediction).data)

    @extend_schema(request=None, responses={200: PredictionSerializer, 409: OpenApiResponse(description="not possible now")})
    @action(detail=True, methods=["post"], permission_classes=[IsReviewerOrAdmin])
    def accept(self, request, pk=None):
        """Accept the draft into the human review flow: it becomes submitted labels, by you."""
        return self._decide(request, drafts.accept_draft)

    @extend_schema(request=SendSerializer, responses={200: PredictionSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsReviewerOrAdmin])
    def send(self, request, pk=None):
        """Send the draft to annotation (to one annotator when ``assignee`` names them)."""
        body = SendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        assignee = None
        if body.validated_data.get("assignee"):
            assignee = get_user_model().objects.filter(username=body.validated_data["assignee"]).first()
            if assignee is None or role_of(assignee) not in ("annotator", "admin"):
                return Response({"assignee": ["not an annotator"]}, status=400)
        return self._decide(request, drafts.send_to_annotation, assignee=assignee)

    @extend_schema(request=RejectSerializer, responses={200: PredictionSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsReviewerOrAdmin])
    def reject(self, request, pk=None):
        """Reject the image (blurry, no nails...): it leaves every queue."""
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._decide(request, drafts.reject_image, reason=body.validated_data["reason"],
                            comment=body.validated_data.get("comment", ""))


def human_agreement(prediction: Prediction) -> dict | None:
    """IoU of the prediction's draft with the image's current labels, once a human has worked on it."""
    from labeling import raster_overlays
    from labeling.models import Annotation

    annotation = Annotation.objects.filter(image_id=prediction.image_id).first()
    if annotation is None or not drafts.has_human_revision(annotation):
        return None
    image = prediction.image
    result = raster_overlays.compare(prediction.geometry or {"nails": []}, annotation.geometry, image.width, image.height)
    return {"version": annotation.version, "status": annotation.status, **result}


class CorrectionFilter(filters.FilterSet):
    model = filters.CharFilter(field_name="model_version_name")

    class Meta:
        model = CorrectionRecord
        fields = ["image", "model", "outcome", "drafted"]


class CorrectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What humans changed in model drafts before finishing an image (one record per finished image; see
    prelabel/metrics.py). Missing records are collected when the list is read."""

    serializer_class = CorrectionSerializer
    filterset_class = CorrectionFilter
    permission_classes = [IsReviewerOrAdmin]
    queryset = CorrectionRecord.objects.none()

    def get_queryset(self):
        return CorrectionRecord.objects.select_related("annotator").order_by("-submitted_at", "-id")

    def list(self, request, *args, **kwargs):
        metrics.collect_corrections()
        return super().list(request, *args, **kwargs)


class PromotionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every decision about the active model. ``POST`` (admins) starts a ``promote_model`` job: both models
    are measured on the current snapshot's val split, then the gate decides (or the override reason)."""

    serializer_class = PromotionSerializer
    permission_classes = [IsStaffRole]
    queryset = PromotionDecision.objects.none()

    def get_queryset(self):
        return PromotionDecision.objects.select_related("model_version", "previous_active", "decided_by")

    def get_permissions(self):
        if self.action == "create":
            return [IsAdminRole()]
        return super().get_permissions()

    @extend_schema(request=PromotionRequestSerializer, responses={202: OpenApiResponse(description="the promote_model job")})
    def create(self, request):
        body = PromotionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ref = body.validated_data["model"]
        arguments = {"model": int(ref) if ref.isdigit() else ref}
        if body.validated_data.get("override_reason", "").strip():
            arguments["override_reason"] = body.validated_data["override_reason"]
        return start_job_response("promote_model", arguments, request.user)


class MetricsView(APIView):
    """The correction dashboard: per model version the share of drafts finished unchanged / with minor
    edits, mean nail IoU, edits per image, and the median time per image with and without a draft."""

    permission_classes = [IsReviewerOrAdmin]

    @extend_schema(responses={200: OpenApiResponse(description="per-model correction metrics")})
    def get(self, request):
        collected = metrics.collect_corrections()
        return Response({**metrics.dashboard(), "collected_now": collected})


class OpenView(APIView):
    """The annotation page says it opened an image (time to submit starts here; see prelabel/metrics.py).
    The answer carries the model draft the page shows, if it is one: per draft nail (``nail``: its index in
    the draft geometry) the outline ``confidence`` (mean nail probability: low means the outline itself is
    doubtful), ``class_confidence`` and ``direction_confidence`` (those of its suggested finger and landmarks), and
    ``proposed``: whether the page proposes it to accept or reject with one key instead of showing it as a nail
    (``proposals.is_proposed``; the threshold is ``propose_below``)."""

    permission_classes = [IsStaffRole]

    @extend_schema(request=OpenSerializer, responses={201: OpenApiResponse(description="recorded")})
    def post(self, request):
        body = OpenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = get_object_or_404(visible_images(request.user).select_related("annotation"), pk=body.validated_data["image"])
        annotation = image.annotation
        event = OpenEvent.objects.create(image=image, user=request.user, annotation_version=annotation.version,
                                         opened_at=timezone.now())
        draft = (Prediction.objects.select_related("model_version").defer("overlay_png")
                 .filter(image=image, draft_version=annotation.version).first())
        data = {"id": event.pk, "image": image.pk, "opened_at": event.opened_at, "draft": None}
        if draft is not None and not drafts.has_human_revision(annotation):
            data["draft"] = {"prediction": draft.pk, "model_version": draft.model_version.name, "version": draft.draft_version,
                             "confidence": draft.confidence, "propose_below": proposals.PROPOSE_BELOW,
                             "nails": [{"nail": i, "finger": n.get("finger"), "confidence": n.get("confidence"),
                                        "class_confidence": n.get("class_confidence"),
                                        "direction_confidence": n.get("direction_confidence"),
                                        "proposed": proposals.is_proposed(n)}
                                       for i, n in enumerate(n for n in draft.nails if not n.get("dropped"))]}
        return Response(data, status=201)


class QueueOrderView(APIView):
    """The order of the annotators' open queue: everyone sees it, admins change it."""

    def get_permissions(self):
        return [IsAdminRole()] if self.request.method == "PUT" else [IsStaffRole()]

    def _state(self):
        from labeling.queue import current_order

        order = current_order()
        return {"order": order.name, "label": order.label, "orders": uncertainty.queue_orders()}

    @extend_schema(responses=QueueOrderStateSerializer)
    def get(self, request):
        return Response(self._state())

    @extend_schema(request=QueueOrderSerializer, responses=QueueOrderStateSerializer)
    def put(self, request):
        body = QueueOrderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            uncertainty.set_queue_order(body.validated_data["order"], request.user)
        except ValueError as exc:
            return Response({"order": [str(exc)]}, status=400)
        return Response(self._state())


class RunView(APIView):
    """Admins: pre-label images now (a ``prelabel`` job on the prelabel queue): a participant's, a
    selection (``image_ids``) or every image still open for labelling (``unlabeled``)."""

    permission_classes = [IsAdminRole]

    @extend_schema(request=RunSerializer, responses={202: OpenApiResponse(description="the prelabel job")})
    def post(self, request):
        body = RunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        arguments = {k: v for k, v in body.validated_data.items() if v not in (None, False, "", [])}
        model = arguments.get("model", "active")
        arguments["model"] = int(model) if isinstance(model, str) and model.isdigit() else model
        return start_job_response("prelabel", arguments, request.user)
