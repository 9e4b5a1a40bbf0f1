"""Participants, what they upload, the images made from it, and the labels of each image."""
import secrets

import numpy as np
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from PIL import Image as PILImage

from dataset.geometry import empty_geometry


def new_upload_token() -> str:
    return secrets.token_urlsafe(32)


class Participant(models.Model):
    """A person who contributes photos. Pseudonymous: a code, never a real name."""

    code = models.SlugField(max_length=64, unique=True, help_text="pseudonymous code, e.g. P0042")
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_version = models.CharField(max_length=32, blank=True)
    upload_token = models.CharField(max_length=64, unique=True, default=new_upload_token, editable=False)
    token_rotated_at = models.DateTimeField(null=True, blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True, help_text="the upload link stops working then (empty: never)")
    erased_at = models.DateTimeField(null=True, blank=True, help_text="all data erased at the participant's request")
    erasure_record = models.JSONField(default=dict, blank=True, editable=False,
                                      help_text="what each erasure removed, when and at whose request (labeling/erasure.py)")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.code

    def rotate_token(self) -> str:
        """A new upload link; the old one stops working at once."""
        self.upload_token = new_upload_token()
        self.token_rotated_at = timezone.now()
        self.save(update_fields=["upload_token", "token_rotated_at"])
        return self.upload_token

    @property
    def upload_path(self) -> str:
        return f"/u/{self.upload_token}/"

    def token_problem(self) -> str | None:
        """Why the upload link may not be used now, or None."""
        if self.erased_at:
            return f"this upload link is not valid any more: your data was deleted on {self.erased_at:%d %B %Y}"
        if self.token_expires_at and self.token_expires_at <= timezone.now():
            return "this upload link has expired; ask the study team for a new one"
        return None


def upload_file_path(upload, filename):
    return f"uploads/{upload.participant_id}/{upload.sha256[:2]}/{upload.sha256}"


class Upload(models.Model):
    """One file a participant sent, as sent. The same file twice from one participant is one upload."""

    class Kind(models.TextChoices):
        PHOTO = "photo"
        VIDEO = "video"

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="uploads")
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=64, help_text="sniffed from the bytes, never from the name")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to=upload_file_path, max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["participant", "sha256"], name="one_upload_per_file_and_participant")]

    def __str__(self):
        return f"{self.participant.code}/{self.original_name}"


def image_file_path(image, filename):
    return f"images/{image.participant_id}/{image.sha256[:2]}/{image.sha256}.{filename.rsplit('.', 1)[-1]}"


def thumbnail_file_path(image, filename):
    return f"thumbnails/{image.participant_id}/{image.sha256[:2]}/{image.sha256}.jpg"


class Image(models.Model):
    """One labelable picture: a photo, or one frame of a video. Stored normalized (orientation applied,
    metadata stripped)."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="images")
    upload = models.ForeignKey(Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="images")
    frame_index = models.PositiveIntegerField(null=True, blank=True, help_text="frame number in the video")
    timestamp_s = models.FloatField(null=True, blank=True, help_text="time of the frame in the video, seconds")
    file = models.FileField(upload_to=image_file_path, max_length=255)
    thumbnail = models.FileField(upload_to=thumbnail_file_path, max_length=255, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="of the stored, normalized file")
    phash = models.CharField(max_length=16, blank=True, help_text="64-bit perceptual hash, hex (near-duplicate checks)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["participant", "sha256"], name="one_image_per_content_and_participant")]

    def __str__(self):
        return f"image {self.pk} ({self.participant.code})"

    def read_rgb(self) -> np.ndarray:
        """The stored (normalized) picture as a uint8 RGB array (FileNotFoundError when its file is gone)."""
        with self.file.open("rb") as handle:
            picture = PILImage.open(handle)
            picture.load()
        return np.asarray(picture.convert("RGB"))


class Annotation(models.Model):
    """The current labels of one image. ``version`` grows by one on every change (optimistic locking);
    each version is kept as an AnnotationRevision."""

    class Status(models.TextChoices):
        UNLABELED = "unlabeled"
        DRAFT = "draft"
        SUBMITTED = "submitted"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="annotation")
    geometry = models.JSONField(default=empty_geometry)
    invalid_shapes = models.JSONField(default=list, blank=True, help_text=(
        "shapes of a draft that break the geometry rules, kept apart from `geometry` with their problems "
        "(labeling/annotations.py); empty once submitted"))
    version = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNLABELED)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_annotations")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviewed_annotations")
    review_comment = models.TextField(blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status"]), models.Index(fields=["assignee", "status"])]

    def __str__(self):
        return f"annotation of image {self.image_id} v{self.version} ({self.status})"


class AnnotationRevision(models.Model):
    """A full copy of an annotation as it was after one change: nothing is ever lost."""

    class Source(models.TextChoices):
        HUMAN = "human"
        MODEL = "model"            # a model's pre-label draft (prelabel/drafts.py), names its model
        SUGGESTION = "suggestion"  # fields filled by labeling/suggestions.py (complete_labels), marked suggested

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    geometry = models.JSONField()
    invalid_shapes = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Annotation.Status.choices)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.HUMAN)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_version = models.CharField(max_length=64, blank=True, help_text="the model that drafted it, when source=model")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["annotation", "version"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "version"], name="one_revision_per_version"),
            models.CheckConstraint(condition=~Q(source="model") | ~Q(model_version=""), name="model_revision_names_its_model"),
        ]

    def __str__(self):
        return f"revision {self.version} of image {self.annotation.image_id}"
