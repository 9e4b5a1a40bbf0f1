from rest_framework import serializers

from .models import Job


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    cancel_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "key", "arguments", "queue", "status", "progress", "message", "log", "result", "error",
            "created_by", "created_at", "started_at", "finished_at", "heartbeat_at", "cancel_requested_at",
            "celery_task_id", "worker", "attempts", "cancel_url",
        ]
        read_only_fields = fields

    def get_cancel_url(self, job) -> str | None:
        return f"/api/jobs/{job.pk}/cancel/" if job.is_active else None


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=64)
    arguments = serializers.JSONField(required=False, default=dict)
