"""Training runs on snapshots and the model versions they produce."""
from django.conf import settings
from django.db import models
from django.db.models import Q


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

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model")]

    def __str__(self):
        return self.name
