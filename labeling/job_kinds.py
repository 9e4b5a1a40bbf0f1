"""Job kinds of the labeling app (see jobs.registry)."""
from jobs.registry import JobArgumentError, job_kind

from .intake import RejectedFile, file_sha256, ingest_photo_upload
from .models import Image, Participant, Upload


def _upload_arguments(arguments: dict) -> dict:
    upload_id = arguments.get("upload_id")
    if isinstance(upload_id, bool) or not isinstance(upload_id, int):
        raise JobArgumentError("upload_id must be the id of an upload")
    if not Upload.objects.filter(pk=upload_id).exists():
        raise JobArgumentError(f"there is no upload {upload_id}")
    return {"upload_id": upload_id}


@job_kind("ingest_upload", title="Ingest an upload", validate=_upload_arguments)
def ingest_upload(ctx, upload_id: int) -> dict:
    upload = Upload.objects.select_related("participant").get(pk=upload_id)
    ctx.progress(0.1, f"normalizing {upload.original_name}")
    try:
        image = ingest_photo_upload(upload)
    except RejectedFile as exc:
        ctx.log(f"rejected {upload.original_name}: {exc}")
        raise
    ctx.progress(1.0, f"image {image.pk} ready ({image.width}x{image.height})")
    return {"image_id": image.pk, "width": image.width, "height": image.height}


def _verify_arguments(arguments: dict) -> dict:
    code = arguments.get("participant")
    unknown = set(arguments) - {"participant"}
    if unknown:
        raise JobArgumentError(f"unknown arguments: {', '.join(sorted(unknown))}")
    if code is not None and not isinstance(code, str):
        raise JobArgumentError("participant must be a participant code")
    return {"participant": code} if code else {}


@job_kind("verify_media", title="Verify stored media", validate=_verify_arguments)
def verify_media(ctx, participant: str | None = None) -> dict:
    """Re-read every stored image and compare its bytes with the sha256 recorded at ingest."""
    images = Image.objects.order_by("pk")
    if participant:
        found = Participant.objects.filter(code=participant).first()
        if found is None:
            raise ValueError(f"there is no participant {participant!r}")
        images = images.filter(participant=found)
    total = images.count()
    missing, corrupted, checked = [], [], 0
    for index, image in enumerate(images.iterator(chunk_size=500), start=1):
        try:
            if file_sha256(image.file.path) != image.sha256:
                corrupted.append(image.pk)
                ctx.log(f"image {image.pk}: content does not match its sha256")
        except FileNotFoundError:
            missing.append(image.pk)
            ctx.log(f"image {image.pk}: file {image.file.name} is missing")
        checked += 1
        ctx.progress(index / total, f"checked {index} of {total} images")
    return {"checked": checked, "missing": missing, "corrupted": corrupted, "ok": not missing and not corrupted}
