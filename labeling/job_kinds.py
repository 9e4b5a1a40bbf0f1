"""Job kinds of the labeling app (see jobs.registry)."""
from pathlib import Path

from dataset.checksums import file_sha256
from jobs.registry import JobArgumentError, job_kind

from .extensions import after_ingest
from .intake import RejectedFile, ingest_upload, store_upload
from .models import Image, Participant, Upload
from .suggestions import complete_annotation


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


def _complete_arguments(arguments: dict) -> dict:
    unknown = set(arguments) - {"all", "participant", "image_ids", "accept_above"}
    if unknown:
        raise JobArgumentError(f"unknown arguments: {', '.join(sorted(unknown))}")
    chosen = [key for key in ("all", "participant", "image_ids") if arguments.get(key) not in (None, False, [])]
    if len(chosen) != 1:
        raise JobArgumentError("give exactly one of all (true), participant (a code) or image_ids (a list of ids)")
    out: dict = {}
    if chosen == ["all"]:
        if arguments["all"] is not True:
            raise JobArgumentError("all must be true")
        out["all"] = True
    elif chosen == ["participant"]:
        code = arguments["participant"]
        if not isinstance(code, str) or not Participant.objects.filter(code=code).exists():
            raise JobArgumentError(f"participant must be the code of an existing participant, not {code!r}")
        out["participant"] = code
    else:
        ids = arguments["image_ids"]
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            raise JobArgumentError("image_ids must be a list of image ids")
        missing = sorted(set(ids) - set(Image.objects.filter(pk__in=ids).values_list("pk", flat=True)))
        if missing:
            raise JobArgumentError(f"there is no image {', '.join(map(str, missing))}")
        out["image_ids"] = sorted(set(ids))
    threshold = arguments.get("accept_above")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise JobArgumentError("accept_above must be a number in [0, 1]")
        out["accept_above"] = float(threshold)
    return out


@job_kind("complete_labels", title="Complete labels with suggestions", validate=_complete_arguments)
def complete_labels(ctx, accept_above: float | None = None, **scope) -> dict:
    """Suggest (or, at ``accept_above``, accept) the finger and base/tip of every nail that lacks them
    (``labeling/suggestions.py``): never over a confirmed field. ``scope``: all, participant or image_ids."""
    images = Image.objects.order_by("pk")
    if scope.get("participant"):
        images = images.filter(participant__code=scope["participant"])
    elif scope.get("image_ids"):
        images = images.filter(pk__in=scope["image_ids"])
    total = images.count()
    counts = {"images": total, "changed": 0, "suggested": {}, "accepted": {}, "skipped": {}}
    for number, image in enumerate(images.iterator(chunk_size=200), start=1):
        done = complete_annotation(image, accept_above=accept_above)
        counts["changed"] += done.changed
        for key in ("suggested", "accepted", "skipped"):
            for name, n in getattr(done, key).items():
                counts[key][name] = counts[key].get(name, 0) + n
        if done.changed:
            ctx.log(f"image {image.pk}: v{done.version}: {done.note}")
        ctx.progress(number / total, f"{number} of {total} images: {counts['changed']} changed")
    return counts
