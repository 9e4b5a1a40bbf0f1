from rest_framework import serializers

from jobs.serializers import JobSerializer

from .models import ModelVersion, TrainingRun
from .runs import live_stats


class ModelVersionSerializer(serializers.ModelSerializer):
    weights_size = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "run", "config", "metrics", "snapshot_content_hash", "is_active", "activation_note",
                  "created_at", "weights_size"]
        read_only_fields = fields

    def get_weights_size(self, version) -> int | None:
        try:
            return version.weights.size
        except (OSError, ValueError):
            return None


class TrainingRunSerializer(serializers.ModelSerializer):
    snapshot = serializers.SlugRelatedField(slug_field="name", read_only=True)
    job = JobSerializer(read_only=True)
    model_version = serializers.SlugRelatedField(slug_field="name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    status = serializers.CharField(read_only=True, help_text="the job's status: queued, running, succeeded, failed, cancelled")
    live = serializers.SerializerMethodField(help_text="epochs done of planned, fraction of the steps, elapsed seconds, ETA, images/s")

    class Meta:
        model = TrainingRun
        fields = ["id", "snapshot", "preset", "overrides", "config", "status", "live", "job", "history", "result",
                  "model_version", "created_by", "created_at"]
        read_only_fields = fields

    def get_live(self, run) -> dict:
        return live_stats(run)


class TrainingStartSerializer(serializers.Serializer):
    snapshot = serializers.CharField()
    preset = serializers.ChoiceField(choices=["tiny", "web-336", "native-448"], default="tiny")
    epochs = serializers.IntegerField(min_value=1, required=False)
    overrides = serializers.JSONField(required=False, default=dict)
