"""What participants send: content sniffing, atomic storage with dedupe, and photo normalization.

The type of a file is decided from its first bytes, never from its name or the request's header.
Photos become Images with the EXIF orientation applied, every metadata block (EXIF, GPS, XMP, ICC after
conversion to sRGB) dropped, and a thumbnail. Videos are checked (decodable, not too long) when they
arrive; their frames are selected later by the ingest job (``labeling/video.py``), each frame an Image with
its frame index and timestamp.

A file with data after the end of its own structure (a JPEG+ZIP polyglot, a Motion Photo's video; see
``labeling/containers.py``) is refused. The raw file as sent, with its metadata, is kept only until its
ingest succeeds or is refused for good (``discard_raw``); the Upload row stays with its sha256, size and
type, so the same file sent again is still recognized. Size limits also apply while the request body
streams in, before it reaches the disk (``labeling/upload_limits.py``).
"""
from __future__ import annotations

import hashlib
import io
import tempfile
import unicodedata
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps
from pillow_heif import register_heif_opener

from dataset.phash import perceptual_hash

from .containers import ContainerError, trailing_data
from .models import Annotation, Image, Participant, Upload
from .video import Frame, VideoError, extract_frames, probe_video

register_heif_opener()  # phones send HEIC/HEIF

PHOTO_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic", "image/heif": "heif"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm"}


class RejectedFile(ValueError):
    """A file we do not accept; the message says why in words a participant understands."""


def size_limit(content_type: str | None) -> int:
    """The most bytes accepted for a file of this (sniffed) type."""
    return settings.NAILSET_MAX_VIDEO_BYTES if content_type in VIDEO_TYPES else settings.NAILSET_MAX_PHOTO_BYTES


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size // (1024 * 1024)} MB"
    return f"{size // 1024} kB" if size >= 1024 else f"{size} bytes"


def too_large_message(content_type: str | None) -> str:
    kind = "videos" if content_type in VIDEO_TYPES else "photos"
    return f"the file is larger than the {human_size(size_limit(content_type))} limit for {kind}"


def sniff_content_type(head: bytes) -> str:
    """The content type from the first bytes of a file (at least 32 bytes needed), or RejectedFile."""
    if len(head) == 0:
        raise RejectedFile("the file is empty")
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"):
            return "image/heic"
        if brand in (b"mif1", b"msf1"):
            return "image/heif"
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<svg", b"<?xml", b"<!doctype", b"<html")):
        raise RejectedFile("SVG, XML and HTML files are not accepted: send a photo (JPEG, PNG, WebP or HEIC) or a video")
    raise RejectedFile("this is not a photo or video we can read: send JPEG, PNG, WebP or HEIC photos, or MP4, MOV or WebM videos")


def clean_file_name(name: str) -> str:
    """The base name only (no folders), normalized unicode, no control characters, at most 200 chars."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return name[:200] or "unnamed"


@dataclass
class StoredUpload:
    upload: Upload
    created: bool


def store_upload(participant: Participant, stream, original_name: str) -> StoredUpload:
    """Copy the stream to a temporary file while hashing it, check it, then store it atomically.

    A file the participant already sent (same sha256) returns the existing upload. Nothing is left on
    disk or in the database when anything fails, a connection cut half way included.
    """
    digest = hashlib.sha256()
    size, limit, content_type = 0, None, None
    with tempfile.NamedTemporaryFile(dir=_tmp_dir(), suffix=".part") as tmp:
        head = b""
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            if content_type is None:
                head += chunk[: 64 - len(head)]
                if len(head) >= 64 or len(chunk) < 64:
                    content_type = sniff_content_type(head)
                    limit = size_limit(content_type)
            size += len(chunk)
            if limit is not None and size > limit:
                raise RejectedFile(too_large_message(content_type))
            digest.update(chunk)
            tmp.write(chunk)
        tmp.flush()
        if content_type is None:
            content_type = sniff_content_type(head)
        sha256 = digest.hexdigest()
        existing = Upload.objects.filter(participant=participant, sha256=sha256).first()
        if existing:
            return StoredUpload(existing, False)
        kind = Upload.Kind.VIDEO if content_type in VIDEO_TYPES else Upload.Kind.PHOTO
        if kind == Upload.Kind.VIDEO:
            _check_video(tmp.name)
        else:
            tmp.seek(0)
            _open_photo(tmp)  # refuse what cannot be decoded before anything is stored
        _refuse_hidden_data(tmp.name, content_type)
        tmp.seek(0)
        try:
            with transaction.atomic():
                upload = Upload(participant=participant, original_name=clean_file_name(original_name), content_type=content_type,
                                kind=kind, size=size, sha256=sha256)
                upload.file.save(sha256, File(tmp), save=False)
                try:
                    upload.save()
                except Exception:
                    upload.file.delete(save=False)
                    raise
        except IntegrityError:  # the same file arrived twice at once: the other request stored it
            return StoredUpload(Upload.objects.get(participant=participant, sha256=sha256), False)
    return StoredUpload(upload, True)


def _check_video(path: str) -> None:
    try:
        info = probe_video(path)
    except VideoError as exc:
        raise RejectedFile(str(exc)) from exc
    limit = settings.NAILSET_MAX_VIDEO_SECONDS
    if info.duration_s > limit:
        raise RejectedFile(f"the video is {info.duration_s:.0f} s long; at most {limit} s are accepted")
    if max(info.width, info.height) > settings.NAILSET_MAX_PIXELS_SIDE:
        raise RejectedFile(f"the video is {info.width}x{info.height}; at most {settings.NAILSET_MAX_PIXELS_SIDE} pixels on each side are accepted")


def _refuse_hidden_data(path: str, content_type: str) -> None:
    """Refuse a file that goes on after its picture or video ends (see ``labeling/containers.py``)."""
    video = content_type in VIDEO_TYPES
    try:
        extra = trailing_data(path, content_type)
    except ContainerError as exc:
        raise RejectedFile(f"the {'video' if video else 'image'} is damaged or truncated and cannot be read ({exc})") from exc
    if extra is None:
        return
    if video:
        raise RejectedFile("this file has extra data hidden after the end of the video (another file glued to it); "
                           "send the video alone")
    raise RejectedFile("this file has extra data hidden after the picture (a Motion Photo's video or another file); "
                       "send the photo alone")


def _tmp_dir() -> str:
    path = settings.MEDIA_ROOT / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _open_photo(fileobj) -> PILImage.Image:
    """Open and decode a photo, checking its size from the header before decoding any pixel.

    Pillow's decompression-bomb guard is strict here: its warning (more than ``Image.MAX_IMAGE_PIXELS``,
    about 89 megapixels) refuses the file too, not only its error at twice that.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            picture = PILImage.open(fileobj)
            width, height = picture.size
            low, high = settings.NAILSET_MIN_PIXELS_SIDE, settings.NAILSET_MAX_PIXELS_SIDE
            if min(width, height) < low:
                raise RejectedFile(f"the image is only {width}x{height} pixels; photos must be at least {low} pixels on each side")
            if max(width, height) > high:
                raise RejectedFile(f"the image is {width}x{height} pixels; at most {high} pixels on each side are accepted")
            picture.load()
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise RejectedFile(f"the image has too many pixels ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, RejectedFile):
            raise
        raise RejectedFile(f"the image is damaged or truncated and cannot be read ({exc})") from exc
    return picture


def normalized_photo(fileobj) -> tuple[PILImage.Image, str]:
    """Orientation applied, converted to sRGB RGB, no metadata. Returns the picture and the format to
    store it in (JPEG for lossy sources, PNG for lossless ones)."""
    picture = _open_photo(fileobj)
    lossless = picture.format == "PNG" or (picture.format == "WEBP" and getattr(picture, "info", {}).get("lossless"))
    icc = picture.info.get("icc_profile")
    picture = ImageOps.exif_transpose(picture)
    if picture.mode not in ("RGB", "L"):
        picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
        if picture.mode == "RGBA":
            background = PILImage.new("RGB", picture.size, (255, 255, 255))
            background.paste(picture, mask=picture.getchannel("A"))
            picture = background
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            picture = ImageCms.profileToProfile(picture, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: keep the pixels as they are
    picture = picture.convert("RGB")
    clean = PILImage.new("RGB", picture.size)  # a fresh image carries no info/EXIF/XMP at all
    clean.paste(picture)
    return clean, "PNG" if lossless else "JPEG"


def encode(picture: PILImage.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        picture.save(buffer, "JPEG", quality=95, optimize=True)
    else:
        picture.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def create_image(participant: Participant, picture: PILImage.Image, fmt: str = "JPEG", *, upload: Upload | None = None,
                 frame_index: int | None = None, timestamp_s: float | None = None) -> tuple[Image, bool]:
    """Store a normalized picture as an Image with its thumbnail and an empty annotation.

    Returns ``(image, created)``; the same picture twice for one participant is one Image.
    """
    data = encode(picture, fmt)
    sha256 = hashlib.sha256(data).hexdigest()
    existing = Image.objects.filter(participant=participant, sha256=sha256).first()
    if existing:
        return existing, False
    thumb = picture.copy()
    thumb.thumbnail((settings.NAILSET_THUMBNAIL_SIZE, settings.NAILSET_THUMBNAIL_SIZE))
    image = Image(participant=participant, upload=upload, frame_index=frame_index, timestamp_s=timestamp_s,
                  width=picture.width, height=picture.height, sha256=sha256, phash=f"{perceptual_hash(thumb):016x}")
    ext = "jpg" if fmt == "JPEG" else "png"
    image.file.save(f"{sha256}.{ext}", ContentFile(data), save=False)
    image.thumbnail.save(f"{sha256}.jpg", ContentFile(encode(thumb, "JPEG")), save=False)
    try:
        with transaction.atomic():
            image.save()
            Annotation.objects.create(image=image)
    except Exception:
        image.file.delete(save=False)
        image.thumbnail.delete(save=False)
        raise
    return image, True


def ingest_photo_upload(upload: Upload) -> Image:
    """Turn a stored photo upload into an Image."""
    with upload.file.open("rb") as fileobj:
        picture, fmt = normalized_photo(fileobj)
    image, _ = create_image(upload.participant, picture, fmt, upload=upload)
    return image


def ingest_video_upload(upload: Upload, progress=None) -> list[Image]:
    """Turn a stored video upload into one Image per selected frame (see ``labeling/video.py``), each
    stored as soon as it is decoded. All or nothing: when anything fails (a frame that cannot be decoded
    again, storage, cancellation), the Images this call created are removed, files included."""
    images: list[Image] = []
    created: list[Image] = []

    def store_frame(frame: Frame) -> None:
        image, is_new = create_image(upload.participant, PILImage.fromarray(frame.rgb), "JPEG", upload=upload,
                                     frame_index=frame.index, timestamp_s=round(frame.timestamp_s, 3))
        images.append(image)
        if is_new:
            created.append(image)

    try:
        extract_frames(
            upload.file.path, store_frame, rate=settings.NAILSET_VIDEO_FRAME_RATE, max_frames=settings.NAILSET_VIDEO_MAX_FRAMES,
            blur_threshold=settings.NAILSET_VIDEO_BLUR_THRESHOLD, duplicate_distance=settings.NAILSET_VIDEO_DUPLICATE_DISTANCE,
            progress=progress,
        )
    except BaseException as exc:
        _remove_images(created)
        if isinstance(exc, VideoError):
            raise RejectedFile(str(exc)) from exc
        raise
    return images


def _remove_images(images: list[Image]) -> None:
    """Undo ``create_image``: the rows (their annotations go with them), then the files."""
    for image in images:
        image.delete()
        image.file.delete(save=False)
        image.thumbnail.delete(save=False)


def ingest_upload(upload: Upload, progress=None) -> list[Image]:
    """Photo or video -> Images. Marks the upload processing, then ready, or failed with the reason.

    The raw file goes once it is no longer needed: after success, and after a refusal (RejectedFile),
    which would only repeat. Any other failure (a worker or disk problem) keeps it for a retry. An upload
    already ingested answers its images again.
    """
    if not upload.file:
        images = list(upload.images.order_by("pk"))
        if upload.status == Upload.Status.READY and images:
            return images
        raise RejectedFile(raw_gone_message(upload))
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.PROCESSING)
    try:
        if upload.kind == Upload.Kind.VIDEO:
            images = ingest_video_upload(upload, progress)
        else:
            images = [ingest_photo_upload(upload)]
    except Exception as exc:
        reason = str(exc) if isinstance(exc, RejectedFile) else f"processing failed: {exc.__class__.__name__}: {exc}"
        Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.FAILED, failure_reason=reason)
        if isinstance(exc, RejectedFile):
            discard_raw(upload)
        raise
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.READY, failure_reason="")
    discard_raw(upload)
    return images


def discard_raw(upload: Upload) -> None:
    """Remove the file as the participant sent it, hidden metadata and all. The Upload row stays with its
    sha256, size and type (the record, and dedupe of the same file sent again). The file is deleted once
    the emptied field is committed, so a rolled-back import keeps both."""
    name = upload.file.name
    if not name:
        return
    storage = upload.file.storage
    Upload.objects.filter(pk=upload.pk).update(file="")
    upload.file = ""
    transaction.on_commit(lambda: storage.delete(name))


def discard_processed_raws() -> int:
    """Remove the raw file of every upload already processed: those kept by versions before raw files were
    discarded at ingest. Returns how many went."""
    count = 0
    for upload in Upload.objects.filter(status=Upload.Status.READY).exclude(file="").iterator():
        discard_raw(upload)
        count += 1
    return count


def raw_gone_message(upload: Upload) -> str:
    """Why an upload whose raw file was discarded cannot be processed again."""
    if upload.status == Upload.Status.FAILED and upload.failure_reason:
        return f"this file was refused before and is not kept: {upload.failure_reason}"
    return ("the file as sent is no longer kept (it is removed once processed) and its images were deleted since; "
            "nothing is left to process")
