"""What participants send: content sniffing, atomic storage with dedupe, and photo normalization.

The type of a file is decided from its first bytes, never from its name or the request's header.
Photos become Images with the EXIF orientation applied, every metadata block (EXIF, GPS, XMP, ICC after
conversion to sRGB) dropped, and a thumbnail. Video ingest belongs to the intake issue and is refused
with a clear message until it lands.
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

from .models import Annotation, Image, Participant, Upload

PHOTO_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic", "image/heif": "heif"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm"}


class RejectedFile(ValueError):
    """A file we do not accept; the message says why in words a participant understands."""


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
        raise RejectedFile("SVG, XML and HTML files are not accepted: send a photo (JPEG, PNG, WebP or HEIC)")
    raise RejectedFile("this is not a photo we can read: send JPEG, PNG, WebP or HEIC")


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
    disk or in the database when anything fails.
    """
    limit = settings.NAILSET_MAX_PHOTO_BYTES
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=_tmp_dir(), suffix=".part") as tmp:
        head = b""
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            if len(head) < 64:
                head += chunk[: 64 - len(head)]
            size += len(chunk)
            if size > limit:
                raise RejectedFile(f"the file is larger than the {limit // (1024 * 1024)} MB limit for photos")
            digest.update(chunk)
            tmp.write(chunk)
        tmp.flush()
        content_type = sniff_content_type(head)
        if content_type in VIDEO_TYPES:
            raise RejectedFile("video uploads are not accepted yet: send photos")
        sha256 = digest.hexdigest()
        existing = Upload.objects.filter(participant=participant, sha256=sha256).first()
        if existing:
            return StoredUpload(existing, False)
        tmp.seek(0)
        _open_photo(tmp)  # refuse what cannot be decoded before anything is stored
        tmp.seek(0)
        try:
            with transaction.atomic():
                upload = Upload(participant=participant, original_name=clean_file_name(original_name), content_type=content_type,
                                kind=Upload.Kind.PHOTO, size=size, sha256=sha256)
                upload.file.save(sha256, File(tmp), save=False)
                try:
                    upload.save()
                except Exception:
                    upload.file.delete(save=False)
                    raise
        except IntegrityError:  # the same file arrived twice at once: the other request stored it
            return StoredUpload(Upload.objects.get(participant=participant, sha256=sha256), False)
    return StoredUpload(upload, True)


def _tmp_dir() -> str:
    path = settings.MEDIA_ROOT / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _open_photo(fileobj) -> PILImage.Image:
    """Open and decode a photo, checking its size from the header before decoding any pixel.

    Pillow's decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``) stays on as a second line.
    """
    try:
        picture = PILImage.open(fileobj)
        width, height = picture.size
        low, high = settings.NAILSET_MIN_PIXELS_SIDE, settings.NAILSET_MAX_PIXELS_SIDE
        if min(width, height) < low:
            raise RejectedFile(f"the image is only {width}x{height} pixels; photos must be at least {low} pixels on each side")
        if max(width, height) > high:
            raise RejectedFile(f"the image is {width}x{height} pixels; at most {high} pixels on each side are accepted")
        picture.load()
    except PILImage.DecompressionBombError as exc:
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
                  width=picture.width, height=picture.height, sha256=sha256)
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
    """Turn a stored photo upload into an Image. Marks the upload ready or failed with the reason."""
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.PROCESSING)
    try:
        with upload.file.open("rb") as fileobj:
            picture, fmt = normalized_photo(fileobj)
        image, _ = create_image(upload.participant, picture, fmt, upload=upload)
    except RejectedFile as exc:
        Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.FAILED, failure_reason=str(exc))
        raise
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.READY, failure_reason="")
    return image


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()
