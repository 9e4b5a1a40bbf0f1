"""Training runs on snapshots and the model versions they produce."""
from django.conf import settings
from django.db import models
from django.db.models import Q

from ml.export.registry import EXPORT_FORMATS

#: (name, title) of every model export format, from the registry of ml.export (choices of the model and the API)
EXPORT_FORMAT_CHOICES = list(EXPORT_FORMATS.items())


class TrainingRun(models.Model):
    """One training of one model configuration on one snapshot, through a Job on the training queue."""

    snapshot = models.ForeignKey("curation.Snapshot", on_delete=models.PROTECT, related_name="training_runs")
    preset = models.CharField(max_length=32)
    config = models.JSONField(default=dict, help_text="the full ml.train.TrainConfig, as run")
    overrides = models.JSONField(default=dict, blank=True, help_text="what was changed from the preset")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    history = models.JSONField(default=list, blank=True, help_text="one entry per epoch: losses and val metrics")
    result = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"run {self.pk}: {self.preset} on {self.snapshot.name}"

    @property
    def status(self) -> str:
        return self.job.status if self.job else "unknown"


def weights_path(version, filename):
    return f"models/{version.name}/{filename}"


class ModelVersionQuerySet(models.QuerySet):
    def active(self) -> "ModelVersion | None":
        """The active model version (the one pre-labeling and the try-on use), or None. The database
        allows one at most (constraint ``one_active_model``)."""
        return self.filter(is_active=True).first()


class ModelVersion(models.Model):
    """Trained weights with everything needed to use and trust them."""

    name = models.SlugField(max_length=100, unique=True)
    run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version")
    weights = models.FileField(upload_to=weights_path, max_length=255)
    config = models.JSONField(default=dict, help_text="ml.train.TrainConfig the weights were trained with")
    metrics = models.JSONField(default=dict, help_text="best val metrics of the run")
    snapshot_content_hash = models.CharField(max_length=64)
    is_active = models.BooleanField(default=False, help_text="the model pre-labeling and the try-on use")
    activation_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model")]

    def __str__(self):
        return self.name


def artifact_path(artifact, filename):
    return f"models/{artifact.model_version.name}/exports/{filename}"


class ModelArtifact(models.Model):
    """One export of a model version (ONNX, Core ML or TF.js), with its metadata block and parity report
    (training/exports/; ml/export/). ``file`` is the artifact as a zip archive (the download);
    ``folder`` (below MEDIA_ROOT) holds it unpacked, with its parity reference, for the browser to load."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="artifacts")
    format = models.CharField(max_length=16, choices=EXPORT_FORMAT_CHOICES)
    options = models.JSONField(default=dict, blank=True, help_text="precision, size, quantize... as asked for")
    file = models.FileField(upload_to=artifact_path, max_length=255, help_text="the artifact as a zip archive")
    folder = models.CharField(max_length=255, blank=True, help_text="the unpacked artifact, relative to MEDIA_ROOT")
    metadata = models.JSONField(default=dict, help_text="model version, snapshot hash, input, label map, outputs")
    parity = models.JSONField(default=dict, help_text="max abs difference of every output against PyTorch, latency")
    passed = models.BooleanField(default=False, help_text="every measured run is under the format's parity goal")
    size_bytes = models.BigIntegerField(default=0, help_text="size of the artifact's files, unpacked")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.model_version.name} {self.format} #{self.pk}"

    @property
    def variant(self) -> str:
        """fp16 / fp32 (Core ML), float16 / uint8 (TF.js quantisation) or ''."""
        return self.options.get("precision") or self.options.get("quantize") or ""
