"""Issue #13, rows 5 and 9: no raw upload (with its GPS/EXIF) outlives its ingest, files with data hidden after
their end are refused, and upload size limits apply while the body streams, before it reaches the disk."""
import hashlib
import io
import secrets
import struct
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.conf import settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from PIL import Image as PILImage

from jobs.models import Job
from jobs.runner import execute_job
from labeling.intake import RejectedFile, ingest_upload, store_upload
from labeling.models import Image, Upload
from tests.conftest import jpeg_bytes, send_upload as send
from tests.media import video_bytes


def media_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def unique_picture(width=120, height=90) -> PILImage.Image:
    """Noise from a fresh seed: its bytes (and sha256) exist nowhere else in this test session."""
    rng = np.random.default_rng(secrets.randbits(64))
    return PILImage.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def gps_photo() -> tuple[bytes, list[bytes]]:
    """A phone-like JPEG with EXIF (maker, date) and GPS; returns it and byte patterns only its metadata has."""
    maker = f"GPSPhone-{secrets.token_hex(6)}"
    exif = PILImage.Exif()
    exif[0x010F] = maker
    exif[0x0132] = "2026:11:02 10:11:12"
    exif[0x8825] = {1: "N", 2: (47.0, 23.0, 11.0), 3: "E", 4: (8.0, 31.0, 59.0)}
    raw = exif.tobytes()
    order = "<" if raw.startswith(b"II") or b"II*\x00" in raw[:10] else ">"
    latitude = struct.pack(order + "6I", 47, 1, 23, 1, 11, 1)
    longitude = struct.pack(order + "6I", 8, 1, 31, 1, 59, 1)
    return jpeg_bytes(unique_picture(), exif=raw), [b"Exif\x00\x00", maker.encode(), latitude, longitude]


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.txt", "not a picture " * 50)
    return buffer.getvalue()


# --- Raw bytes: nothing as sent is kept after ingest ------------------------------------------------------

def test_gps_photo_is_accepted_and_after_ingest_no_file_on_disk_holds_its_metadata(token_client, django_capture_on_commit_callbacks):
    data, secrets_in_metadata = gps_photo()
    assert all(pattern in data for pattern in secrets_in_metadata)  # the patterns really are in what the phone sent
    before = media_files()
    response = send(token_client, data)
    assert response.status_code == 201, response.json()
    upload = Upload.objects.get(pk=response.json()["id"])
    raw_path = Path(upload.file.path)
    assert raw_path.read_bytes() == data  # stored as sent until it is ingested

    with django_capture_on_commit_callbacks(execute=True):
        job = execute_job(int(response["X-Job-Id"]))
    assert job.status == "succeeded", job.error
    upload.refresh_from_db()
    assert upload.status == "ready" and not upload.file and not raw_path.exists()
    assert (upload.sha256, upload.size, upload.content_type) == (hashlib.sha256(data).hexdigest(), len(data), "image/jpeg")
    image = Image.objects.get(upload=upload)
    assert (image.width, image.height) == (120, 90) and Path(image.file.path).exists()

    new_files = media_files() - before
    assert Path(image.file.path) in new_files and Path(image.thumbnail.path) in new_files
    for path in media_files():  # the whole media storage, temporary folder included
        content = path.read_bytes()
        assert not any(pattern in content for pattern in secrets_in_metadata[1:]), f"{path} keeps the photo's EXIF/GPS"
        if path in new_files:
            assert b"Exif\x00\x00" not in content, f"{path} has an EXIF block"


def test_the_same_file_sent_again_after_its_raw_is_gone_is_still_one_upload(token_client, django_capture_on_commit_callbacks):
    data = jpeg_bytes(unique_picture())
    first = send(token_client, data)
    with django_capture_on_commit_callbacks(execute=True):
        execute_job(int(first["X-Job-Id"]))
    assert not Upload.objects.get().file
    files = media_files()

    again = send(token_client, data, name="again.jpg")
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "ready" and len(again.json()["image_ids"]) == 1
    assert Upload.objects.count() == 1 and Image.objects.count() == 1 and Job.objects.count() == 1
    assert media_files() == files  # the raw is not stored again


def test_a_file_refused_at_ingest_loses_its_raw_and_says_so_when_sent_again(participant, token_client, settings,
                                                                           django_capture_on_commit_callbacks):
    data = jpeg_bytes(unique_picture(150, 80))
    response = send(token_client, data)
    upload = Upload.objects.get(pk=response.json()["id"])
    raw_path = Path(upload.file.path)
    settings.NAILSET_MAX_PIXELS_SIDE = 100  # a permanent refusal, found by the ingest itself
    with django_capture_on_commit_callbacks(execute=True):
        job = execute_job(int(response["X-Job-Id"]))
    assert job.status == "failed"
    upload.refresh_from_db()
    assert upload.status == "failed" and "at most 100 pixels" in upload.failure_reason
    assert not upload.file and not raw_path.exists() and Image.objects.count() == 0

    # import_media and curation's import re-ingest a known upload that is not ready: they are told why
    stored = store_upload(participant, io.BytesIO(data), "again.jpg")
    assert not stored.created and stored.upload.pk == upload.pk
    with pytest.raises(RejectedFile, match="refused before and is not kept: .*at most 100 pixels"):
        ingest_upload(stored.upload)
    assert not raw_path.exists()


def test_a_failure_that_is_not_a_refusal_keeps_the_raw_for_a_retry(participant, monkeypatch, django_capture_on_commit_callbacks):
    import labeling.intake as intake

    data = jpeg_bytes(unique_picture())
    upload = store_upload(participant, io.BytesIO(data), "hand.jpg").upload
    raw_path = Path(upload.file.path)
    create_image = intake.create_image

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(intake, "create_image", disk_full)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(OSError):
        ingest_upload(upload)
    upload.refresh_from_db()
    assert upload.status == "failed" and "disk full" in upload.failure_reason
    assert upload.file and raw_path.read_bytes() == data  # kept: the next try can still read it

    monkeypatch.setattr(intake, "create_image", create_image)
    with django_capture_on_commit_callbacks(execute=True):
        images = ingest_upload(upload)
    upload.refresh_from_db()
    assert len(images) == 1 and upload.status == "ready" and not upload.file and not raw_path.exists()
    assert ingest_upload(upload) == images  # a repeated job (a worker restart) answers the same images


def test_a_video_leaves_only_its_frames(token_client, django_capture_on_commit_callbacks):
    response = send(token_client, video_bytes(seconds=2, fps=10), name="hand.mp4")
    raw_path = Path(Upload.objects.get().file.path)
    with django_capture_on_commit_callbacks(execute=True):
        job = execute_job(int(response["X-Job-Id"]))
    assert job.status == "succeeded", job.error
    assert not raw_path.exists() and not Upload.objects.get().file and Image.objects.count() >= 1


def test_admin_upload_page_says_the_raw_file_is_gone(client_for, users, token_client, django_capture_on_commit_callbacks):
    response = send(token_client, jpeg_bytes(unique_picture()))
    with django_capture_on_commit_callbacks(execute=True):
        execute_job(int(response["X-Job-Id"]))
    from django.test import Client

    admin = Client()
    users["admin"].is_staff = users["admin"].is_superuser = True
    users["admin"].save()
    admin.force_login(users["admin"])
    page = admin.get(f"/admin/labeling/upload/{response.json()['id']}/change/")
    assert page.status_code == 200 and b"removed: only the processed images" in page.content


# --- Data hidden after the end of a photo or video -------------------------------------------------------

def test_jpeg_zip_polyglot_is_refused_and_nothing_of_it_stays(token_client):
    polyglot = jpeg_bytes(unique_picture()) + zip_bytes()
    assert zipfile.ZipFile(io.BytesIO(polyglot)).namelist() == ["payload.txt"]  # a real ZIP...
    PILImage.open(io.BytesIO(polyglot)).load()  # ...and a real JPEG
    before = media_files()
    response = send(token_client, polyglot)
    assert response.status_code == 400
    reason = response.json()["file"][0]
    assert "extra data hidden after the picture" in reason and "send the photo alone" in reason
    assert Upload.objects.count() == 0 and Image.objects.count() == 0 and Job.objects.count() == 0
    assert media_files() == before


def encoded(fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    unique_picture(64, 48).save(buffer, fmt, **save_args)
    return buffer.getvalue()


def webm_bytes() -> bytes:
    path = Path(settings.MEDIA_ROOT) / "tmp" / f"{secrets.token_hex(4)}.webm"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 10, (64, 48))
    for index in range(20):
        writer.write(np.roll(np.indices((48, 64))[1].astype(np.uint8)[..., None].repeat(3, 2) * 4, index, axis=1))
    writer.release()
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF", "MP4", "WEBM"])
def test_data_after_the_end_of_any_accepted_format_is_refused(token_client, fmt):
    clean = {"MP4": lambda: video_bytes(seconds=1, fps=10), "WEBM": webm_bytes}.get(fmt, lambda: encoded(fmt))()
    ok = send(token_client, clean, name="clean.bin")
    assert ok.status_code == 201, ok.json()  # the format itself is accepted
    before = media_files()
    response = send(token_client, clean + zip_bytes(), name="file.bin")
    assert response.status_code == 400, response.json()
    assert "extra data hidden after" in response.json()["file"][0]
    assert Upload.objects.count() == 1 and media_files() == before


def test_a_little_padding_and_a_multi_picture_jpeg_are_accepted_but_not_more(token_client):
    photo = jpeg_bytes(unique_picture())
    assert send(token_client, photo + b"\x00" * 512, name="padded.jpg").status_code == 201
    assert send(token_client, photo + b"\x00" * 5000, name="long-padding.jpg").status_code == 400
    assert send(token_client, photo + b"\x00" * 16 + b"hidden", name="padding-then-data.jpg").status_code == 400
    # A Multi-Picture JPEG (APP2 "MPF": the gain map of an Ultra HDR photo, a depth map) lists the JPEGs after it.
    multi = io.BytesIO()
    first, second = unique_picture(), unique_picture()
    first.save(multi, "MPO", save_all=True, append_images=[second])
    assert send(token_client, multi.getvalue(), name="ultrahdr.jpg").status_code == 201
    refused = send(token_client, multi.getvalue() + zip_bytes(), name="ultrahdr-zip.jpg")
    assert refused.status_code == 400 and "extra data hidden" in refused.json()["file"][0]


# --- Size before disk --------------------------------------------------------------------------------------

class CountingInput:
    """A request body (wsgi.input) that counts the bytes the server reads, and the largest size of
    Django's upload spool folder seen while reading."""

    def __init__(self, data: bytes, spool: Path):
        self.stream, self.spool, self.read_bytes, self.peak_spooled = io.BytesIO(data), spool, 0, 0

    def _spooled(self) -> int:
        return sum(p.stat().st_size for p in self.spool.rglob("*") if p.is_file())

    def read(self, size=-1):
        self.peak_spooled = max(self.peak_spooled, self._spooled())
        chunk = self.stream.read(size)
        self.read_bytes += len(chunk)
        return chunk

    def readline(self, size=-1):
        chunk = self.stream.readline(size)
        self.read_bytes += len(chunk)
        return chunk


@pytest.fixture
def small_limits(settings, tmp_path):
    settings.NAILSET_MAX_PHOTO_BYTES = 100 * 1024
    settings.NAILSET_MAX_VIDEO_BYTES = 1024 * 1024
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # anything bigger is spooled to FILE_UPLOAD_TEMP_DIR
    (tmp_path / "spool").mkdir()
    return tmp_path / "spool"


def post_counted(client, file_bytes: bytes, spool: Path, url="/api/uploads/"):
    upload = io.BytesIO(file_bytes)
    upload.name = "big.jpg"
    body = encode_multipart(BOUNDARY, {"file": upload})
    counter = CountingInput(body, spool)
    response = client.generic("POST", url, body, content_type=MULTIPART_CONTENT, **{"wsgi.input": counter})
    return response, counter, len(body)


CHUNK = 64 * 1024  # Django's upload chunk


def test_a_body_over_the_largest_upload_is_refused_before_it_is_read(token_client, small_limits):
    before = media_files()
    response, counter, size = post_counted(token_client, b"\xff\xd8\xff\xe0" + b"\x00" * (3 * 1024 * 1024), small_limits)
    assert size > 3 * 1024 * 1024
    assert response.status_code == 413
    assert response.json()["detail"] == "the upload is 3 MB; the largest accepted is 1 MB for a video and 100 kB for a photo"
    assert counter.read_bytes == 0 and counter.peak_spooled == 0
    assert Upload.objects.count() == 0 and media_files() == before and not any(small_limits.iterdir())


def test_a_photo_over_its_limit_stops_streaming_at_the_limit(token_client, small_limits):
    """Within the request cap (so Content-Length does not give it away) but 8 times the photo limit:
    the body is read only up to the photo limit and a chunk, and what was spooled is deleted."""
    before = media_files()
    photo = jpeg_bytes(unique_picture(32, 32))
    response, counter, size = post_counted(token_client, photo + b"\x00" * (800 * 1024 - len(photo)), small_limits)
    assert response.status_code == 413
    assert response.json()["detail"] == "the file is larger than the 100 kB limit for photos"
    assert counter.read_bytes <= 100 * 1024 + 2 * CHUNK < size
    assert counter.peak_spooled <= 100 * 1024 + CHUNK
    assert not any(small_limits.iterdir())  # the spooled part is gone
    assert Upload.objects.count() == 0 and Job.objects.count() == 0 and media_files() == before


def test_a_body_within_the_limits_still_works(token_client, small_limits):
    photo = jpeg_bytes(unique_picture(160, 120), quality=100)
    assert 1024 < len(photo) < 100 * 1024  # spooled to disk, under the photo limit
    response, counter, size = post_counted(token_client, photo, small_limits)
    assert response.status_code == 201, response.json()
    assert counter.read_bytes == size and Upload.objects.get().size == len(photo)
    video = video_bytes(seconds=2, fps=10, size=(320, 240))
    assert 100 * 1024 < len(video) < 1024 * 1024  # over the photo limit, under the video one
    response, counter, size = post_counted(token_client, video, small_limits)
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "video" and counter.read_bytes == size


def test_django_pages_refuse_an_oversized_body_with_400_not_500(users, small_limits):
    from django.test import Client

    admin = Client()
    users["admin"].is_staff = users["admin"].is_superuser = True
    users["admin"].save()
    admin.force_login(users["admin"])
    response, counter, _ = post_counted(admin, b"code\n" + b"P1\n" * (1024 * 1024), small_limits,
                                        url="/admin/labeling/participant/import-csv/")
    assert response.status_code == 400 and counter.read_bytes == 0


def test_raw_files_kept_by_earlier_versions_can_be_discarded(participant, django_capture_on_commit_callbacks):
    from django.core.management import call_command

    processed = store_upload(participant, io.BytesIO(jpeg_bytes(unique_picture())), "old.jpg").upload
    waiting = store_upload(participant, io.BytesIO(jpeg_bytes(unique_picture())), "new.jpg").upload
    Upload.objects.filter(pk=processed.pk).update(status="ready")  # as an earlier version left it: ingested, raw kept
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("discard_raw_uploads", stdout=out)
    assert "raw files of 1 processed uploads" in out.getvalue()
    assert not Path(processed.file.path).exists() and not Upload.objects.get(pk=processed.pk).file
    assert Path(waiting.file.path).exists() and Upload.objects.get(pk=waiting.pk).file  # not ingested yet: kept
