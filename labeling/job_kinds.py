"""Job kinds of the labeling app (see jobs.registry)."""
from pathlib import Path

from dataset.checksums import file_sha256
from jobs.registry import JobArgumentError, job_kind

from .extensions import after_ingest
from .intake import RejectedFile, ingest_upload, store_upload
from .models import Image, Participant, Upload


def _upload_arguments(arguments: dict) -> dict:
    upload_id = arguments.get("upload_id")
    if isinstance(upload_id, bool) or not isinstance(upload_id, int):
        raise JobArgumentError("upload_id must be the id of an upload")
    if not Upload.objects.filter(pk=upload_id).exists():
        raise JobArgumentError(f"there is no upload {upload_id}")
    return {"upload_id": upload_id}


@job_kind("ingest_upload", title="Ingest an upload", validate=_upload_arguments)
def ingest_upload_job(ctx, upload_id: int) -> dict:
    upload = Upload.objects.select_related("participant").get(pk=upload_id)
    ctx.progress(0.0, f"processing {upload.kind} {upload.original_name}")
    try:
        images = ingest_upload(upload, progress=lambda fraction: ctx.progress(0.95 * fraction))
    except RejectedFile as exc:
        ctx.log(f"rejected {upload.original_name}: {exc}")
        raise
    ctx.progress(1.0, f"{len(images)} image(s) ready from {upload.original_name}")
    after_ingest([image.pk for image in images], log=ctx.log)  # pre-labeling queues drafts (labeling/extensions.py)
    return {"image_ids": [image.pk for image in images]}


def _import_arguments(arguments: dict) -> dict:
    code, paths = arguments.get("participant"), arguments.get("paths")
    if not isinstance(code, str) or not Participant.objects.filter(code=code).exists():
        raise JobArgumentError(f"participant must be the code of an existing participant, not {code!r}")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise JobArgumentError("paths must be a non-empty list of files or folders on the server")
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise JobArgumentError(f"these paths do not exist: {', '.join(missing)}")
    return {"participant": code, "paths": [str(Path(p).resolve()) for p in paths]}


def media_files(paths: list[str]) -> list[Path]:
    """Every file under the given files and folders (recursively), in a stable order."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            found.append(path)
    return found


@job_kind("import_media", title="Import photos and videos from the server", validate=_import_arguments,
          reads=("paths",))
def import_media(ctx, participant: str, paths: list[str]) -> dict:
    """Bring an existing photo collection in through the very same checks and pipeline as uploads."""
    owner = Participant.objects.get(code=participant)
    files = media_files(paths)
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0, "images": 0}
    rejected = []
    for number, path in enumerate(files, start=1):
        try:
            with path.open("rb") as stream:
                stored = store_upload(owner, stream, path.name)
            if stored.created or stored.upload.status != Upload.Status.READY:
                counts["images"] += len(ingest_upload(stored.upload))
                counts["accepted"] += 1
            else:
                counts["duplicate"] += 1
        except RejectedFile as exc:
            counts["rejected"] += 1
            rejected.append({"path": str(path), "reason": str(exc)})
            ctx.log(f"rejected {path}: {exc}")
        ctx.progress(number / len(files), f"{number} of {len(files)} files: {counts['accepted']} accepted, "
                                          f"{counts['duplicate']} duplicate, {counts['rejected']} rejected")
    return {**counts, "files": len(files), "rejected_files": rejected}


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
