"""Try-on API: ``GET /api/tryon/config``, ``POST /api/tryon/render``."""
from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_site.json_parsing import JSONParser
from labeling.annotations import visible_images
from labeling.intake import RejectedFile
from ml.render import FINISHES
from training.models import ModelVersion

from . import rendering


class RenderRequestSerializer(serializers.Serializer):
    image = serializers.FileField(required=False, help_text="a photo (JPEG, PNG, WebP, HEIC); not stored")
    image_id = serializers.IntegerField(required=False, help_text="a platform image instead of a photo")
    source = serializers.ChoiceField(choices=["model", "labels"], default="model",
                                     help_text="model: the active model's prediction; labels: the image's current "
                                               "labels (image_id only)")
    color = serializers.CharField(default="#C8102E", help_text="polish colour, #RRGGBB")
    finish = serializers.ChoiceField(choices=list(FINISHES), default="glossy")
    format = serializers.ChoiceField(choices=["json", "jpeg"], default="json",
                                     help_text="json: the picture as a data URL with the nails; jpeg: the picture only")

    def validate_color(self, value):
        try:
            return rendering.check_color(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, data):
        if bool(data.get("image")) == (data.get("image_id") is not None):
            raise serializers.ValidationError("send either a photo in 'image' or a platform 'image_id'")
        if data["source"] == "labels" and data.get("image_id") is None:
            raise serializers.ValidationError({"source": "labels exist for platform images only: send image_id"})
        return data


class TryOnConfigView(APIView):
    @extend_schema(responses=inline_serializer("TryOnConfig", {
        "active_model": serializers.JSONField(allow_null=True), "in_browser": serializers.JSONField(),
        "finishes": serializers.ListField(child=serializers.CharField()), "palette": serializers.JSONField(),
        "max_side": serializers.IntegerField()}))
    def get(self, request):
        """What the try-on page needs: the active model (or null), whether it can run in the browser (not
        until the model has a TensorFlow.js export), the finishes and the colour palette."""
        return Response(rendering.page_config(ModelVersion.objects.active()))


class TryOnRenderView(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={"multipart/form-data": RenderRequestSerializer},
        responses={200: inline_serializer("TryOnResult", {
            "image": serializers.CharField(help_text="data:image/jpeg;base64,..."),
            "width": serializers.IntegerField(), "height": serializers.IntegerField(),
            "source": serializers.CharField(), "model": serializers.CharField(allow_null=True),
            "color": serializers.CharField(), "finish": serializers.CharField(),
            "nails": serializers.JSONField(), "timings_ms": serializers.JSONField()}),
            (200, "image/jpeg"): bytes,
            400: OpenApiResponse(description="not a photo, bad colour or finish"),
            409: OpenApiResponse(description="no active model (model source)")},
    )
    def post(self, request):
        """Paint the nails of a photo (or of a platform image) with a colour and a finish. The model source
        runs the active model version (409 when there is none) then post-processing and rendering; the
        labels source paints a platform image's current labels. The photo is processed in memory and not
        kept. ``format=jpeg`` answers the JPEG alone (headers ``X-Tryon-Nails``, ``X-Tryon-Model``)."""
        body = RenderRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            if data.get("image_id") is not None:
                image = get_object_or_404(visible_images(request.user).select_related("annotation"), pk=data["image_id"])
                full = rendering.platform_photo(image)
                rgb = rendering.shrink(full, rendering.MAX_SIDE)
                if data["source"] == "labels":
                    result = rendering.render_with_labels(rgb, image.annotation.geometry, data["color"], data["finish"],
                                                          original_size=(full.shape[1], full.shape[0]))
                else:
                    result = rendering.render_with_model(rgb, None, data["color"], data["finish"])
            else:
                rgb = rendering.load_photo(data["image"])
                result = rendering.render_with_model(rgb, None, data["color"], data["finish"])
        except rendering.NoActiveModel as exc:
            return Response({"detail": str(exc), "code": "no_active_model"}, status=409)
        except RejectedFile as exc:
            return Response({"detail": str(exc), "code": "rejected_file"}, status=400)
        jpeg = rendering.encode_jpeg(result.image)
        if data["format"] == "jpeg":
            response = HttpResponse(jpeg, content_type="image/jpeg")
            response["X-Tryon-Nails"] = str(len(result.nails))
            response["X-Tryon-Model"] = result.model or ""
            response["Cache-Control"] = "no-store"
            return response
        h, w = result.image.shape[:2]
        return Response({"image": rendering.data_url(jpeg), "width": w, "height": h, "source": result.source,
                         "model": result.model, "color": data["color"], "finish": data["finish"],
                         "nails": result.nails, "timings_ms": result.timings_ms},
                        headers={"Cache-Control": "no-store"})
