from rest_framework import serializers

from jobs.serializers import JobSerializer
from ml.train_presets import DEFAULT_TRAIN_PRESET, TRAIN_PRESETS

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
    preset = serializers.ChoiceField(choices=list(TRAIN_PRESETS), default=DEFAULT_TRAIN_PRESET,
                                     error_messages={"invalid_choice": f"\"{{input}}\" is not a train preset; "
                                                                       f"known: {', '.join(TRAIN_PRESETS)}"})
    epochs = serializers.IntegerField(min_value=1, required=False)
    overrides = serializers.JSONField(required=False, default=dict)


class TrainingPresetSerializer(serializers.Serializer):
    """A training preset for people (ml.train_presets.TrainPreset.describe)."""
    name = serializers.CharField()
    device = serializers.ChoiceField(choices=["gpu", "cpu", "tests"])
    device_note = serializers.CharField(help_text="what the device means, e.g. what a GPU preset does on a worker without CUDA")
    purpose = serializers.CharField()
    budget = serializers.CharField(help_text="epochs x steps x batch, crops, model, validation size, in words")
    model = serializers.CharField(help_text="a model preset name (ml.models.config.MODEL_PRESETS)")
    crop_size = serializers.IntegerField()
    epochs = serializers.IntegerField()
    steps_per_epoch = serializers.IntegerField(allow_null=True, help_text="null: one pass over the train split an epoch")
    batch_size = serializers.IntegerField()
    measured = serializers.DictField(allow_null=True, help_text="section, results, figure, time; null: not measured at this budget")
    measured_text = serializers.CharField(help_text="the measured figure in words, or why there is none")


class PredictRequestSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="a photo (JPEG, PNG, WebP, HEIC)")


class PredictedNailSerializer(serializers.Serializer):
    polygon = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    locals()["class"] = serializers.IntegerField(  # "class" is a keyword: declared through the class namespace
        allow_null=True, help_text="finger 1..10 (1-5 left thumb..little, 6-10 right thumb..little), null: unknown")
    class_name = serializers.CharField()
    base = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    tip = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    confidence = serializers.FloatField(help_text="mean nail probability over the nail")
    class_confidence = serializers.FloatField(allow_null=True)
    direction_source = serializers.CharField(help_text="field (the model's direction field), image (photo), shape (no sign)")


class PredictResponseSerializer(serializers.Serializer):
    model = serializers.CharField()
    model_id = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    nails = PredictedNailSerializer(many=True)
    uncertainty = serializers.FloatField()
    input_size = serializers.ListField(child=serializers.IntegerField())
    seconds = serializers.FloatField()
