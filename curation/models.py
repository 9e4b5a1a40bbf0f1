"""Snapshots: immutable, named sets of labelled images with their split, frozen at build time."""
from django.conf import settings
from django.db import models
from django.db.models import Q

from dataset.splits import SPLITS

SPLIT_CHOICES = [(name, name) for name in SPLITS]


class ParticipantSplit(models.Model):
    """The split a participant belongs to. Once assigned it never changes, except by an admin's pin, so
    a model evaluated on a val set is never trained on it later."""

    participant = models.OneToOneField("labeling.Participant", on_delete=models.CASCADE, related_name="split")
    split = models.CharField(max_length=8, choices=SPLIT_CHOICES)
    pinned = models.BooleanField(default=False, help_text="set by an admin; split assignment never moves it")
    assigned_at = models.DateTimeField(auto_now_add=True)
    assigned_by_snapshot = models.CharField(max_length=100, blank=True)

    def __str__(self):
        return f"{self.participant.code} -> {self.split}{' (pinned)' if self.pinned else ''}"


class Snapshot(models.Model):
    class Status(models.TextChoices):
        BUILDING = "building"
        READY = "ready"
        FAILED = "failed"

    name = models.SlugField(max_length=100, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BUILDING)
    include_submitted = models.BooleanField(default=False, help_text="submitted (not yet accepted) labels included on purpose")
    ratios = models.JSONField(default=list)
    seed = models.IntegerField(default=0)
    content_hash = models.CharField(max_length=64, blank=True, help_text="sha256 over images, participants, splits and labels")
    counts = models.JSONField(default=dict, blank=True)
    leaks = models.JSONField(default=list, blank=True, help_text="near-duplicate images found across splits")
    erased_items = models.PositiveIntegerField(default=0, help_text="images removed since it was built: their participants erased their data")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    @property
    def holds_erased_data(self) -> bool:
        """True when a participant in it has since had their data erased (their images and labels are gone)."""
        erased_items = type(self).objects.filter(pk=self.pk).values_list("erased_items", flat=True).first()  # fresh
        return bool(erased_items) or self.items.filter(participant__erased_at__isnull=False).exists()


class SnapshotItem(models.Model):
    """One image of a snapshot with its labels as they were when the snapshot was built."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey("labeling.Image", null=True, on_delete=models.SET_NULL, related_name="+")
    participant = models.ForeignKey("labeling.Participant", on_delete=models.PROTECT, related_name="+")
    split = models.CharField(max_length=8, choices=SPLIT_CHOICES)
    image_sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    annotation_version = models.PositiveIntegerField()
    annotation_status = models.CharField(max_length=16)
    geometry = models.JSONField()

    class Meta:
        ordering = ["snapshot", "split", "id"]
        indexes = [models.Index(fields=["snapshot", "split"])]
        constraints = [models.UniqueConstraint(fields=["snapshot", "image_sha256", "participant"], name="one_item_per_image")]


class Export(models.Model):
    """A file made from a snapshot in one format, kept for download. When a participant in it erases their
    data the file is deleted and the row stays, withdrawn with the reason (a download answers 410)."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=16)
    file = models.FileField(upload_to="exports/", max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True, help_text="the file was deleted then (see withdrawn_reason)")
    withdrawn_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["snapshot", "format"], condition=~Q(file=""), name="one_export_per_format")]
