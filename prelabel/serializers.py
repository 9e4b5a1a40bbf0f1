from rest_framework import serializers

from .models import CorrectionRecord, Prediction, PromotionDecision


class PredictionSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version.name", read_only=True)
    participant = serializers.CharField(source="image.participant.code", read_only=True)
    reviewed_by = serializers.CharField(source="reviewed_by.username", read_only=True, default=None)
    overlay_url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = ["id", "image", "participant", "model_version", "nails", "nail_count", "confidence", "min_confidence",
                  "uncertainty", "draft_state", "draft_version", "review_state", "review_reason", "reviewed_by", "reviewed_at",
                  "input_size", "seconds", "overlay_width", "overlay_height", "overlay_url", "image_url", "created_at",
                  "updated_at"]
        read_only_fields = fields

    def get_overlay_url(self, obj) -> str:
        return f"/api/prelabel/predictions/{obj.pk}/overlay/"

    def get_image_url(self, obj) -> str:
        return f"/api/images/{obj.image_id}/file/"


class SendSerializer(serializers.Serializer):
    assignee = serializers.CharField(required=False, allow_blank=True, help_text="username of the annotator to give it to")


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="blurry, no_nails, not_a_hand, duplicate, other, or your own words")
    comment = serializers.CharField(required=False, allow_blank=True)


class CorrectionSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", read_only=True, default=None)

    class Meta:
        model = CorrectionRecord
        fields = ["id", "image", "prediction", "model_version_name", "drafted", "draft_version", "final_version", "annotator",
                  "outcome", "nails_draft", "nails_final", "nails_added", "nails_deleted", "vertices_moved", "vertices_added",
                  "vertices_removed", "classes_changed", "mean_iou", "opened_at", "submitted_at", "seconds_to_submit", "nails",
                  "summary", "created_at"]
        read_only_fields = fields


class PromotionSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version.name", read_only=True)
    previous_active = serializers.CharField(source="previous_active.name", read_only=True, default=None)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)

    class Meta:
        model = PromotionDecision
        fields = ["id", "model_version", "previous_active", "snapshot_name", "candidate_miou", "active_miou", "promoted",
                  "override", "reason", "decided_by", "created_at"]
        read_only_fields = fields


class PromotionRequestSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="model version name or id")
    override_reason = serializers.CharField(required=False, allow_blank=True,
                                            help_text="promote even if the gate refuses, for this reason (recorded)")


class OpenSerializer(serializers.Serializer):
    image = serializers.IntegerField()


class QueueOrderSerializer(serializers.Serializer):
    order = serializers.CharField()


class QueueOrderStateSerializer(serializers.Serializer):
    order = serializers.CharField(help_text="the order the open queue uses now")
    label = serializers.CharField()
    orders = serializers.ListField(child=serializers.DictField(), help_text="the orders there are: name and label")


class RunSerializer(serializers.Serializer):
    model = serializers.CharField(default="active", help_text="model version name or id, or 'active'")
    participant = serializers.CharField(required=False)
    image_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    unlabeled = serializers.BooleanField(required=False)
    force = serializers.BooleanField(required=False)
