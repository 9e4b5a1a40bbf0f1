"""Model-assisted pre-labeling: what a model predicted for an image, what humans changed in its drafts,
when annotators opened images, and every decision to make a model the active one."""
from django.conf import settings
from django.db import models
from django.db.models import Q


class Prediction(models.Model):
    """One model version's prediction for one image: the nails with their confidence, the image's
    uncertainty, the nail probability map (for the overlay), and what happened to the draft."""

    class DraftState(models.TextChoices):
        DRAFTED = "drafted", "written as the image's draft"
        KEPT = "kept", "the draft was already this prediction"
        SKIPPED_HUMAN = "skipped_human", "not written: a human already labelled the image"
        SKIPPED_STATUS = "skipped_status", "not written: the image is not open for labelling"

    class ReviewState(models.TextChoices):
        PENDING = "pending", "waits for a reviewer"
        ACCEPTED = "accepted", "draft accepted into the human review flow"
        SENT = "sent", "sent to annotation"
        REJECTED = "rejected", "image rejected"

    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.CASCADE, related_name="predictions")
    nails = models.JSONField(default=list, help_text="post-processed nails: polygon, finger, base, tip, confidence, ...")
    geometry = models.JSONField(default=dict, help_text="the draft geometry made of the nails (validated)")
    nail_count = models.PositiveIntegerField(default=0)
    confidence = models.FloatField(null=True, blank=True, help_text="mean nail confidence (mean fg probability); null: no nail")
    min_confidence = models.FloatField(null=True, blank=True)
    uncertainty = models.FloatField(default=0.0, help_text="mean entropy (bits) of the fg probability around predicted edges")
    overlay_png = models.BinaryField(editable=False, help_text="8-bit PNG of the fg probability, longer side <= 512")
    overlay_width = models.PositiveIntegerField(default=0)
    overlay_height = models.PositiveIntegerField(default=0)
    input_size = models.JSONField(default=list, help_text="(h, w) the network ran at")
    seconds = models.FloatField(default=0.0, help_text="inference + post-processing wall time")
    draft_state = models.CharField(max_length=16, choices=DraftState.choices)
    draft_version = models.PositiveIntegerField(null=True, blank=True, help_text="annotation version of the model draft")
    review_state = models.CharField(max_length=16, choices=ReviewState.choices, default=ReviewState.PENDING)
    review_reason = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["image", "model_version"], name="one_prediction_per_image_and_model")]
        indexes = [models.Index(fields=["review_state", "confidence"]), models.Index(fields=["model_version", "uncertainty"])]

    def __str__(self):
        return f"prediction of image {self.image_id} by {self.model_version_id}"


class OpenEvent(models.Model):
    """An annotator opened an image in the annotation tool (sent by the page once per load)."""

    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="open_events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    annotation_version = models.PositiveIntegerField(help_text="the annotation's version when it was opened")
    opened_at = models.DateTimeField()

    class Meta:
        ordering = ["opened_at", "id"]
        indexes = [models.Index(fields=["image", "user", "opened_at"])]


class CorrectionRecord(models.Model):
    """What a human changed before finishing an image (its first human revision that was submitted or
    accepted): per nail against the model's draft when there was one, and the time from open to submit."""

    class Outcome(models.TextChoices):
        UNCHANGED = "unchanged"
        MINOR = "minor"
        MAJOR = "major"
        NO_DRAFT = "no_draft"

    image = models.OneToOneField("labeling.Image", on_delete=models.CASCADE, related_name="correction")
    prediction = models.ForeignKey(Prediction, null=True, blank=True, on_delete=models.SET_NULL, related_name="corrections")
    model_version = models.ForeignKey("training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_version_name = models.CharField(max_length=100, blank=True)
    drafted = models.BooleanField(help_text="the human started from a model draft")
    draft_version = models.PositiveIntegerField(null=True, blank=True)
    final_version = models.PositiveIntegerField()
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    nails = models.JSONField(default=list, help_text="one entry per draft or final nail (see prelabel.metrics)")
    summary = models.JSONField(default=dict)
    nails_draft = models.PositiveIntegerField(default=0)
    nails_final = models.PositiveIntegerField(default=0)
    nails_added = models.PositiveIntegerField(default=0)
    nails_deleted = models.PositiveIntegerField(default=0)
    vertices_moved = models.PositiveIntegerField(default=0)
    vertices_added = models.PositiveIntegerField(default=0)
    vertices_removed = models.PositiveIntegerField(default=0)
    classes_changed = models.PositiveIntegerField(default=0)
    mean_iou = models.FloatField(null=True, blank=True, help_text="mean IoU of matched draft/final nails")
    opened_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField()
    seconds_to_submit = models.FloatField(null=True, blank=True, help_text="open -> submit wall time; null: no open event")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [models.Index(fields=["model_version", "outcome"])]

    def __str__(self):
        return f"corrections of image {self.image_id} ({self.outcome})"


class SnapshotEvaluation(models.Model):
    """A model's val mIoU on a snapshot's val split (ml.evaluate), kept: the promotion gate reads it."""

    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.CASCADE, related_name="+")
    snapshot = models.ForeignKey("curation.Snapshot", on_delete=models.CASCADE, related_name="+")
    size = models.PositiveIntegerField(help_text="longer side the model ran at")
    miou = models.FloatField()
    metrics = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "snapshot"], name="one_evaluation_per_model_and_snapshot")]


class PromotionDecision(models.Model):
    """Every attempt to make a model version the active one, granted or refused, with its numbers."""

    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.CASCADE, related_name="+")
    previous_active = models.ForeignKey("training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot = models.ForeignKey("curation.Snapshot", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot_name = models.CharField(max_length=100, blank=True)
    candidate_miou = models.FloatField(null=True, blank=True)
    active_miou = models.FloatField(null=True, blank=True)
    promoted = models.BooleanField()
    override = models.BooleanField(default=False, help_text="promoted although the gate refused it")
    reason = models.TextField(blank=True, help_text="the gate's reason, or the admin's reason for an override")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(override=False) | ~Q(reason=""), name="override_needs_a_reason")]

    def __str__(self):
        return f"{'promoted' if self.promoted else 'refused'} {self.model_version_id}"


class QueueSetting(models.Model):
    """The order of the annotators' open queue (one row; an admin changes it)."""

    order = models.CharField(max_length=32, default="oldest")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    changed_at = models.DateTimeField(auto_now=True)
