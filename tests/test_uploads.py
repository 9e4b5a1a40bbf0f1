"""Photo uploads with a participant token: sniffing, limits, dedupe, atomic storage, metadata stripping."""
import io
import tracemalloc
import weakref
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image as PILImage
from rest_framework.test import APIClient

from jobs.models import Job
from jobs.runner import execute_job
from labeling.models import Image, Upload
from tests.conftest import jpeg_bytes, send_upload as send, synthetic_picture
from tests.media import png_bomb, video_bytes


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
    image = Image.objects.get(pk=job.result["image_ids"][0])
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
    "text named .jpg": (b"hello, I am not a photo at all" * 3, "not a photo or video we can read"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', "SVG"),
    "html": (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
    "truncated jpeg": (jpeg_bytes(synthetic_picture(200, 150))[:300], "damaged or truncated"),
    "1x1 image": (jpeg_bytes(synthetic_picture(1, 1)), "at least 16 pixels"),
    "png decompression bomb": (png_bomb(20000), "too many pixels"),
    "png bomb under the side limit": (png_bomb(10000), "too many pixels"),
    "video without a decodable frame": (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 4000, "cannot be opened"),
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


def test_video_upload_becomes_frames_with_index_and_timestamp(token_client, participant):
    response = send(token_client, video_bytes(seconds=3, fps=10), name="hand.mp4")
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "video" and response.json()["content_type"] == "video/mp4"
    job = execute_job(int(response["X-Job-Id"]))
    assert job.status == "succeeded", job.error
    frames = list(Image.objects.filter(upload_id=response.json()["id"]).order_by("frame_index"))
    assert 2 <= len(frames) <= settings.NAILSET_VIDEO_MAX_FRAMES
    assert all(f.frame_index is not None and f.timestamp_s == pytest.approx(f.frame_index / 10, abs=1e-3) for f in frames)
    assert (frames[0].width, frames[0].height) == (160, 120)
    assert Upload.objects.get(pk=response.json()["id"]).status == "ready"


def video_file(name: str, **video_args) -> Path:
    path = Path(settings.MEDIA_ROOT) / "tmp" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(video_bytes(**video_args))
    return path


def test_video_frames_drop_blur_and_near_duplicates_and_respect_the_cap():
    from labeling.video import select_frames

    path = video_file("mixed.mp4", seconds=4, fps=10, static_from=2.0, blurred_until=1.0)
    indices = [c.index for c in select_frames(str(path), rate=5, max_frames=20, blur_threshold=50, duplicate_distance=6)]
    assert all(index >= 10 for index in indices)  # the first second is blurred
    assert sum(index >= 20 for index in indices) == 1  # the static half gives one frame, not ten
    capped = select_frames(str(path), rate=10, max_frames=3, blur_threshold=0, duplicate_distance=-1)
    assert len(capped) == 3 and capped == sorted(capped, key=lambda c: c.index)


def test_video_frames_are_handed_over_one_at_a_time():
    """The reading pass decodes the selected frames again and lets each go before decoding the next."""
    from labeling.video import extract_frames

    path = video_file("moving.mp4", seconds=6, fps=10, size=(320, 240))
    handed, handed_indices, alive_at_handover = [], [], []

    def on_frame(frame):
        alive_at_handover.append(sum(ref() is not None for ref in handed))
        handed.append(weakref.ref(frame.rgb))
        handed_indices.append(frame.index)
        assert frame.rgb.shape == (240, 320, 3)

    selected = extract_frames(str(path), on_frame, rate=10, max_frames=20, blur_threshold=0, duplicate_distance=6)
    assert len(selected) >= 10 and handed_indices == [c.index for c in selected]
    assert alive_at_handover == [0] * len(selected)  # never a second full-resolution frame alive


def test_video_frame_extraction_memory_does_not_grow_with_length():
    """Extracting from a 5x longer video peaks no higher: candidates keep no pixels, frames are read one at a time."""
    from labeling.video import extract_frames

    def peak_bytes(path: Path) -> int:
        tracemalloc.start()
        try:  # every frame sampled, sharp enough and new enough: every frame a candidate, the worst case
            extract_frames(str(path), lambda frame: None, rate=10, max_frames=20, blur_threshold=0, duplicate_distance=-1)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short = video_file("short.mp4", seconds=2, fps=10, size=(320, 240))
    long = video_file("long.mp4", seconds=10, fps=10, size=(320, 240))
    peak_short, peak_long = peak_bytes(short), peak_bytes(long)
    assert peak_long < 1.5 * peak_short + 320 * 240 * 3, (peak_short, peak_long)  # slack: one frame


def test_video_ingest_failing_half_way_leaves_nothing(participant, monkeypatch):
    """Frames are stored as they are read; when a later one fails, the ones stored before are removed."""
    import labeling.intake as intake
    from labeling.intake import ingest_upload, store_upload

    path = video_file("fails.mp4", seconds=3, fps=10)
    with path.open("rb") as stream:
        upload = store_upload(participant, stream, "fails.mp4").upload
    before = media_files()
    create_image, stored = intake.create_image, []

    def create_image_then_fail(*args, **kwargs):
        if len(stored) == 2:
            raise OSError("disk full")
        image, created = create_image(*args, **kwargs)
        stored.append(image)
        return image, created

    monkeypatch.setattr(intake, "create_image", create_image_then_fail)
    with pytest.raises(OSError):
        ingest_upload(upload)
    assert len(stored) == 2 and Image.objects.count() == 0 and media_files() == before
    upload.refresh_from_db()
    assert upload.status == "failed" and "disk full" in upload.failure_reason


def test_too_long_video_is_refused(token_client, settings):
    settings.NAILSET_MAX_VIDEO_SECONDS = 2
    response = send(token_client, video_bytes(seconds=3, fps=10), name="long.mp4")
    assert response.status_code == 400 and "at most 2 s" in response.json()["file"][0]


def test_too_large_file_is_refused_while_streaming(token_client, settings):
    settings.NAILSET_MAX_PHOTO_BYTES = 2000
    response = send(token_client, jpeg_bytes(synthetic_picture(300, 200), quality=100))
    # refused by the upload handler while the body streams in (labeling/upload_limits.py), before store_upload
    assert response.status_code == 413 and "larger than the 1 kB limit for photos" in response.json()["detail"]


def test_upload_needs_consent(participant):
    participant.consent_at = None
    participant.save()
    client = APIClient()
    client.credentials(HTTP_X_UPLOAD_TOKEN=participant.upload_token)
    response = send(client, jpeg_bytes(synthetic_picture()))
    assert response.status_code == 403 and "consent" in response.json()["detail"]


@pytest.mark.parametrize("state", ["expired", "erased"])
def test_expired_or_erased_token_is_refused(participant, state):
    from django.utils import timezone

    from labeling.erasure import erase_participant

    token = participant.upload_token
    if state == "expired":
        participant.token_expires_at = timezone.now()
        participant.save()
    else:
        erase_participant(participant)
    client = APIClient()
    client.credentials(HTTP_X_UPLOAD_TOKEN=token)
    response = send(client, jpeg_bytes(synthetic_picture()))
    assert response.status_code == 401
    assert ("expired" if state == "expired" else "not valid") in response.json()["detail"]


def test_upload_cut_off_half_way_leaves_nothing(participant, rf):
    """A client that disconnects mid-body: the request stream raises; no file, no row."""
    from labeling.intake import store_upload

    class CutStream:
        def __init__(self, data):
            self.data, self.sent = data, 0

        def read(self, size=-1):
            if self.sent >= len(self.data) // 2:
                raise OSError("connection reset by peer")
            chunk = self.data[self.sent:self.sent + min(size, 1000)]
            self.sent += len(chunk)
            return chunk

    before = media_files()
    with pytest.raises(OSError):
        store_upload(participant, CutStream(jpeg_bytes(synthetic_picture(300, 200), quality=100)), "cut.jpg")
    assert Upload.objects.count() == 0 and media_files() == before


def test_erasure_removes_every_file_and_row_of_the_participant(token_client, participant, client_for,
                                                                django_capture_on_commit_callbacks):
    from labeling.models import Annotation, AnnotationRevision, Participant

    other = Participant.objects.create(code="P009")
    for data, name in [(jpeg_bytes(synthetic_picture(50, 40)), "a.jpg"), (video_bytes(seconds=2, fps=10), "v.mp4")]:
        execute_job(int(send(token_client, data, name=name)["X-Job-Id"]))
    from labeling.intake import create_image

    kept, _ = create_image(other, synthetic_picture(30, 30), "PNG")
    image = Image.objects.filter(participant=participant).first()
    admin = client_for("admin")
    assert admin.put(f"/api/images/{image.pk}/annotation/", {"version": 0, "geometry": {"nails": []}}, format="json").status_code == 200
    folders = [p for p in Path(settings.MEDIA_ROOT).glob(f"*/{participant.pk}") if p.is_dir()]
    assert folders and any(any(folder.rglob("*")) for folder in folders)

    with django_capture_on_commit_callbacks(execute=True):  # files go once the deletion has committed
        response = admin.post(f"/api/participants/{participant.code}/erase/")
    assert response.status_code == 200 and response.json()["erased"]["uploads"] == 2
    assert not Image.objects.filter(participant=participant).exists() and not Upload.objects.filter(participant=participant).exists()
    assert not AnnotationRevision.objects.filter(annotation__image__participant=participant).exists()
    assert not any(p.exists() for p in folders)
    assert Path(kept.file.path).exists() and Annotation.objects.filter(image=kept).exists()
    participant.refresh_from_db()
    assert participant.erased_at and participant.consent_at is None


def test_participants_from_csv_all_or_nothing(client_for, participant):
    from labeling.models import Participant

    admin = client_for("admin")

    def post(text):
        return admin.post("/api/participants/import-csv/", {"file": io.BytesIO(text.encode())}, format="multipart")

    response = post("code,notes\nP100,first\nP101,\n")
    assert response.status_code == 201 and [p["code"] for p in response.json()] == ["P100", "P101"]
    for bad, reason in [("code\nP200\nbad code!\n", "must be 1-64"), ("code\nP201\nP201\n", "appears twice"),
                        ("code\nP001\n", "already exists"), ("name\nx\n", "'code' column")]:
        response = post(bad)
        assert response.status_code == 400 and reason in response.json()["file"][0]
    assert not Participant.objects.filter(code__in=["P200", "P201"]).exists()


@pytest.mark.parametrize("fmt, content_type, stored_as", [("HEIF", "image/heic", ".jpg"), ("WEBP", "image/webp", ".jpg"),
                                                          ("PNG", "image/png", ".png")])
def test_heic_webp_and_png_photos_are_accepted(token_client, fmt, content_type, stored_as):
    buffer = io.BytesIO()
    synthetic_picture(64, 48).save(buffer, fmt)
    response = send(token_client, buffer.getvalue(), name="photo.bin")  # the name says nothing: the bytes do
    assert response.status_code == 201 and response.json()["content_type"] == content_type
    job = execute_job(int(response["X-Job-Id"]))
    image = Image.objects.get(pk=job.result["image_ids"][0])
    assert (image.width, image.height) == (64, 48) and image.file.name.endswith(stored_as)
