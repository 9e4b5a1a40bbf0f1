"""The participant's page at /u/<token>/: consent, upload UI, own thumbnails only, erasure."""
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from labeling.intake import create_image
from labeling.models import Image, Participant, Upload
from tests.conftest import jpeg_bytes, synthetic_picture
from tests.media import video_bytes


@pytest.fixture
def newcomer(db):
    return Participant.objects.create(code="P050")


def test_consent_is_asked_first_and_recorded_with_its_version(newcomer, settings):
    client = Client()
    page = client.get(newcomer.upload_path)
    assert page.status_code == 200 and b"I have read this and I agree" in page.content and b'id="files"' not in page.content
    refused = client.post(f"{newcomer.upload_path}consent", {"version": settings.NAILSET_CONSENT_VERSION})
    assert refused.status_code == 400 and b"tick the box" in refused.content
    stale = client.post(f"{newcomer.upload_path}consent", {"version": "1999-01", "agree": "yes"})
    assert stale.status_code == 400
    done = client.post(f"{newcomer.upload_path}consent", {"version": settings.NAILSET_CONSENT_VERSION, "agree": "yes"})
    assert done.status_code == 302
    newcomer.refresh_from_db()
    assert newcomer.consent_at and newcomer.consent_version == settings.NAILSET_CONSENT_VERSION
    page = client.get(newcomer.upload_path)
    assert b'accept="image/*,video/*"' in page.content and b"Delete my data" in page.content


def test_unknown_expired_and_erased_links(participant):
    from django.utils import timezone

    assert Client().get("/u/not-a-token/").status_code == 404
    participant.token_expires_at = timezone.now()
    participant.save()
    response = Client().get(participant.upload_path)
    assert response.status_code == 410 and b"expired" in response.content


def test_thumbnails_only_of_the_participants_own_images(participant, newcomer):
    mine, _ = create_image(participant, synthetic_picture(), "PNG")
    theirs, _ = create_image(newcomer, synthetic_picture(50, 50), "PNG")
    client = Client()
    assert client.get(f"{participant.upload_path}thumbnails/{mine.pk}.jpg").status_code == 200
    assert client.get(f"{participant.upload_path}thumbnails/{theirs.pk}.jpg").status_code == 404


def test_delete_my_data_from_the_page(participant, django_capture_on_commit_callbacks):
    image, _ = create_image(participant, synthetic_picture(), "PNG")
    client = Client()
    assert client.post(f"{participant.upload_path}erase", {"confirm": "yes"}).status_code == 400
    assert Image.objects.filter(pk=image.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{participant.upload_path}erase", {"confirm": "DELETE"})
    assert response.status_code == 200 and b"Your data was deleted" in response.content
    assert not Image.objects.filter(pk=image.pk).exists() and not Path(image.file.path).exists()
    assert Client().get(participant.upload_path).status_code == 410  # the old link says the data was deleted


def test_import_media_command_counts_accepted_duplicate_rejected(participant, tmp_path):
    folder = tmp_path / "collection"
    (folder / "nested").mkdir(parents=True)
    photo = jpeg_bytes(synthetic_picture(80, 60))
    (folder / "a.jpg").write_bytes(photo)
    (folder / "nested" / "copy-of-a.jpg").write_bytes(photo)
    (folder / "nested" / "b.png").write_bytes(jpeg_bytes(synthetic_picture(70, 50)))  # a JPEG named .png: sniffed
    (folder / "notes.txt").write_bytes(b"not a photo, just some notes about the session")
    (folder / "clip.mp4").write_bytes(video_bytes(seconds=2, fps=10))
    out = StringIO()
    with pytest.raises(CommandError, match="1 input file"):  # a rejected file: the command exits non-zero
        call_command("import_media", "--participant", participant.code, str(folder), stdout=out)
    text = out.getvalue()
    assert "5 files: 3 accepted, 1 duplicate, 1 rejected" in text
    assert "notes.txt: this is not a photo or video" in text
    assert Upload.objects.filter(participant=participant).count() == 3
    assert Upload.objects.get(original_name="b.png").content_type == "image/jpeg"
    assert Image.objects.filter(participant=participant, frame_index__isnull=False).exists()
    again = StringIO()
    with pytest.raises(CommandError):
        call_command("import_media", "--participant", participant.code, str(folder), stdout=again)
    assert "0 accepted, 4 duplicate, 1 rejected" in again.getvalue()  # running twice adds nothing


def test_import_media_refuses_unknown_participant_or_path(participant, tmp_path):
    with pytest.raises(CommandError, match="participant must be the code of an existing participant"):
        call_command("import_media", "--participant", "ghost", str(tmp_path), stdout=StringIO())
    with pytest.raises(CommandError, match="these paths do not exist"):
        call_command("import_media", "--participant", participant.code, str(tmp_path / "nope"), stdout=StringIO())
