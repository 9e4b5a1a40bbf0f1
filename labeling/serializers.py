from django.contrib.auth import get_user_model
from rest_framework import serializers

from .models import Annotation, AnnotationRevision, Image, Participant, Upload

User = get_user_model()


class ParticipantSerializer(serializers.ModelSerializer):
    upload_path = serializers.CharField(read_only=True)
    image_count = serializers.IntegerField(read_only=True, required=False)
    upload_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Participant
        fields = ["id", "code", "consent_at", "consent_version", "upload_token", "upload_path", "token_rotated_at",
                  "token_expires_at", "erased_at", "notes", "created_at", "image_count", "upload_count"]
        read_only_fields = ["upload_token", "token_rotated_at", "created_at", "consent_at", "consent_version", "erased_at"]


class ParticipantCsvSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV with a header row: code[,notes]")


class UploadSerializer(serializers.ModelSerializer):
    participant = serializers.SlugRelatedField(slug_field="code", read_only=True)
    image_ids = serializers.SerializerMethodField()

    class Meta:
        model = Upload
        fields = ["id", "participant", "original_name", "content_type", "kind", "size", "sha256", "status",
                  "failure_reason", "created_at", "image_ids"]
        read_only_fields = fields

    def get_image_ids(self, upload) -> list[int]:
        return [image.pk for image in upload.images.all()]


class UploadCreateSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    participant = serializers.SlugRelatedField(slug_field="code", queryset=Participant.objects.all(), required=False,
                                               help_text="admins only: the participant to upload for")


class AnnotationSerializer(serializers.ModelSerializer):
    image = serializers.PrimaryKeyRelatedField(read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Annotation
        fields = ["image", "version", "status", "geometry", "invalid_shapes", "assignee", "reviewer", "review_comment",
                  "reviewed_at", "updated_by", "updated_at"]
        read_only_fields = fields


class GeometryField(serializers.JSONField):
    """Passes the parsed JSON through untouched: ``dataset.geometry`` judges it rule by rule, which
    names the nail and the problem far better than a generic "invalid JSON" would."""

    def to_internal_value(self, data):
        return data


class AnnotationSaveSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=0, help_text="the version your edit started from")
    geometry = GeometryField(help_text='{"nails": [{"polygon": [[x, y], ...], "finger": 1..10|null, "base": [x, y]|null, "tip": [x, y]|null}], "ignore": [[[x, y], ...]]}')
    status = serializers.ChoiceField(choices=["draft", "submitted"], default="draft")
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["accept", "reject"])
    comment = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)
    version = serializers.IntegerField(required=False, min_value=0)


class AssignSerializer(serializers.Serializer):
    assignee = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.filter(is_active=True), allow_null=True)


class RevisionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AnnotationRevision
        fields = ["version", "status", "source", "model_version", "author", "note", "created_at", "geometry"]
        read_only_fields = fields


class ImageSerializer(serializers.ModelSerializer):
    participant = serializers.SlugRelatedField(slug_field="code", read_only=True)
    status = serializers.CharField(source="annotation.status", read_only=True)
    version = serializers.IntegerField(source="annotation.version", read_only=True)
    assignee = serializers.SlugRelatedField(source="annotation.assignee", slug_field="username", read_only=True)
    nail_count = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = ["id", "participant", "upload", "frame_index", "timestamp_s", "width", "height", "sha256", "created_at",
                  "status", "version", "assignee", "nail_count", "file_url", "thumbnail_url"]
        read_only_fields = fields

    def get_nail_count(self, image) -> int:
        counted = getattr(image, "nail_count", None)  # counted in SQL by ImageViewSet's list queryset
        return counted if counted is not None else len(image.annotation.geometry.get("nails", []))

    def get_file_url(self, image) -> str:
        return f"/api/images/{image.pk}/file/"

    def get_thumbnail_url(self, image) -> str:
        return f"/api/images/{image.pk}/thumbnail/"


class RasterRequestSerializer(serializers.Serializer):
    geometry = GeometryField(help_text="the labels to rasterize, usually the unsaved ones on the page (same form as a save)")
    kind = serializers.ChoiceField(choices=["foreground", "classes", "field"], default="foreground")
    max_size = serializers.IntegerField(min_value=64, max_value=2048, default=1024,
                                        help_text="longest side of the raster in pixels; the page stretches it over the image")


class QueueCountsSerializer(serializers.Serializer):
    assigned = serializers.IntegerField(help_text="assigned to you, not submitted yet")
    rejected = serializers.IntegerField(help_text="rejected by a reviewer, back with you")
    open = serializers.IntegerField(help_text="unclaimed images anyone may take")
    submitted = serializers.IntegerField()
    accepted = serializers.IntegerField()
    done = serializers.IntegerField(help_text="submitted + accepted")
    remaining = serializers.IntegerField(help_text="assigned + rejected + open")


class QueueNextSerializer(serializers.Serializer):
    image = ImageSerializer(allow_null=True)
    annotation = AnnotationSerializer(allow_null=True)
    counts = QueueCountsSerializer()


class CompareSerializer(serializers.Serializer):
    a = serializers.IntegerField(help_text="version of the first revision")
    b = serializers.IntegerField(help_text="version of the second revision")
    foreground_iou = serializers.FloatField()
    class_agreement = serializers.FloatField(allow_null=True, help_text="share of the pixels both call nail with the same finger")
    matches = serializers.ListField(child=serializers.DictField(), help_text="nail i of a matched to nail j of b, with their IoU")
    raster_size = serializers.ListField(child=serializers.IntegerField())
