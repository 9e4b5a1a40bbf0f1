"""Photo uploads with a participant token: sniffing, limits, dedupe, atomic storage, metadata stripping."""
import io
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image as PILImage
from rest_framework.test import APIClient

from jobs.models import Job
from jobs.runner import execute_job
from labeling.models import Image, Upload
from tests.conftest import jpeg_bytes, synthetic_picture


@pytest.fixture
def token_client(participant):
    client = APIClient()
    client.credentials(HTTP_X_UPLOAD_TOKEN=participant.upload_token)
    return client


def send(client, data: bytes, name="hand.jpg"):
    upload = io.BytesIO(data)
    upload.name = name
    return client.post("/api/uploads/", {"file": upload}, format="multipart")


def photo_with_exif(width=60, height=40, orientation=6) -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = orientation  # rotate 90° clockwise to display
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPS
    return jpeg_bytes(synthetic_picture(width, height), exif=exif.tobytes())


def media_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_photo_upload_is_ingested_rotated_and_stripped_of_metadata(token_client, participant):
    response = send(token_client, photo_with_exif())
    assert response.status_code == 201, response.json()
    job = Job.objects.get(pk=int(response["X-Job-Id"]))
    job = execute_job(job.pk)  # no worker in this test: run the same job code in the foreground
    assert job.status == "succeeded", job.error
    image = Image.objects.get(pk=job.result["image_id"])
    assert (image.width, image.height) == (40, 60)  # EXIF orientation 6 applied
    with image.file.open("rb") as fh:
        stored = PILImage.open(fh)
        stored.load()
        assert not stored.getexif() and "exif" not in stored.info and "icc_profile" not in stored.info
        assert stored.size == (40, 60)
    assert b"PhoneMaker" not in Path(image.file.path).read_bytes()
    upload = Upload.objects.get(pk=response.json()["id"])
    assert upload.status == "ready" and upload.content_type == "image/jpeg" and upload.kind == "photo"
    assert image.annotation.status == "unlabeled" and image.thumbnail


def test_same_photo_twice_is_one_upload(token_client):
    data = jpeg_bytes(synthetic_picture())
    first, second = send(token_client, data), send(token_client, data, name="again.jpg")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["duplicate"] is True and second.json()["id"] == first.json()["id"]
    assert Upload.objects.count() == 1


BAD_FILES = {
    "zero bytes": (b"", "empty"),
    "text named .jpg": (b"hello, I am not a photo at all" * 3, "not a photo"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', "SVG"),
    "html": (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
    "truncated jpeg": (jpeg_bytes(synthetic_picture(200, 150))[:300], "damaged or truncated"),
    "1x1 image": (jpeg_bytes(synthetic_picture(1, 1)), "at least 16 pixels"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_are_refused_with_a_reason_and_leave_nothing(token_client, case):
    data, reason = BAD_FILES[case]
    before = media_files()
    response = send(token_client, data, name="photo.jpg")
    assert response.status_code == 400
    assert reason in response.json()["file"][0]
    assert Upload.objects.count() == 0 and Image.objects.count() == 0 and Job.objects.count() == 0
    assert media_files() == before


def test_too_many_pixels_is_refused(token_client, settings):
    settings.NAILSET_MAX_PIXELS_SIDE = 100
    response = send(token_client, jpeg_bytes(synthetic_picture(150, 80)))
    assert response.status_code == 400 and "at most 100 pixels on each side" in response.json()["file"][0]


def test_file_name_with_path_separators_is_cleaned(token_client):
    response = send(token_client, jpeg_bytes(synthetic_picture()), name="../../etc/\u202epasswd.jpg")
    assert response.status_code == 201
    assert response.json()["original_name"] == "passwd.jpg"
