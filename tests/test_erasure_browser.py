"""In Chromium: a participant whose photos are labelled, in a snapshot and in its exported zip, presses
"Delete my data" on their page, reads what will go, confirms; then nothing of theirs is left on disk
(uploads, images, thumbnails, export zips) and every download URL says so (404 / 410 with the reason)."""
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from curation.snapshots import build_snapshot
from curation.transfer import export_snapshot
from jobs.runner import enqueue_job, execute_job
from labeling.annotations import import_annotation
from labeling.intake import store_upload
from labeling.models import Image, Participant
from tests.browser import login, watched_page
from tests.conftest import jpeg_bytes, make_user, synthetic_picture

pytestmark = pytest.mark.django_db(transaction=True)


def labelled_photos(participant, count):
    images = []
    for n in range(count):
        data = jpeg_bytes(synthetic_picture(64, 48, ((participant.pk * 40 + n * 90) % 256, 60 + n, 120)))
        stored = store_upload(participant, io.BytesIO(data), f"hand-{participant.code}-{n}.jpg")
        job, _ = enqueue_job("ingest_upload", {"upload_id": stored.upload.pk}, send=False)
        assert execute_job(job.pk).status == "succeeded"
        image = Image.objects.get(upload=stored.upload)
        nail = {"polygon": [[4, 5], [12, 5], [12, 20], [4, 20]], "finger": 1, "base": [8, 18], "tip": [8, 7]}
        import_annotation(image, {"nails": [nail]}, status="accepted", note="test")
        images.append(image)
    return images


def files_holding(sha256s: set[str]) -> list[str]:
    """Files under MEDIA_ROOT, and members of zips there, that are one of these images or name one."""
    found = []
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if not path.is_file():
            continue
        contents = [(str(path), path.read_bytes())]
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                contents += [(f"{path}::{name}", archive.read(name)) for name in archive.namelist()]
        found += [where for where, data in contents
                  if hashlib.sha256(data).hexdigest() in sha256s or any(s.encode() in data for s in sha256s)]
    return found


def test_delete_my_data_in_the_browser_leaves_nothing_behind(browser, live_server):
    participant = Participant.objects.create(code="P-LEAVING", consent_at=timezone.now(),
                                             consent_version=settings.NAILSET_CONSENT_VERSION)
    images = labelled_photos(participant, 2)
    staying = Participant.objects.create(code="P-STAYING")
    kept = labelled_photos(staying, 1)
    snapshot = build_snapshot("before-leaving")
    export_snapshot(snapshot, "coco")
    theirs = {image.sha256 for image in images}
    assert files_holding(theirs)  # in the media folders and in the zip
    token = participant.upload_token

    page, errors, _ = watched_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{live_server.url}/u/{token}/")
    expect(page.locator("#sent li")).to_have_count(2)
    page.click("#erase-start")
    expect(page.locator("h1")).to_have_text("Delete your data?")
    expect(page.locator("#erase-plan li[data-key=uploads]")).to_contain_text("2 photos and videos you sent")
    expect(page.locator("#erase-plan li[data-key=snapshot_items]")).to_contain_text("2 pictures")
    expect(page.locator("#erase-plan li[data-key=exports]")).to_contain_text("1 dataset export file")
    assert Image.objects.filter(participant=participant).count() == 2  # nothing goes before the confirmation
    page.click("#erase-confirm")
    expect(page.locator("h1")).to_have_text("Your data was deleted")
    expect(page.locator("#erased li[data-key=images]")).to_contain_text("2 pictures made from them")

    page.goto(f"{live_server.url}/u/{token}/")  # the old link still identifies them and says what happened
    expect(page.get_by_role("alert")).to_contain_text("your data was deleted on")
    assert errors == []
    page.context.close()

    root = Path(settings.MEDIA_ROOT)
    for kind in ("uploads", "images", "thumbnails"):
        assert not (root / kind / str(participant.pk)).exists()
    assert files_holding(theirs) == []
    assert Path(kept[0].file.path).exists()

    make_user("chief", is_staff=True, is_superuser=True)
    desk, _, _ = watched_page(browser)
    login(desk, live_server.url, "chief", "chief-password-123")  # the admin's session answers the API too
    context = desk.context
    request = context.request
    as_admin = {}
    for image in images:
        assert request.get(f"{live_server.url}/api/images/{image.pk}/file/", headers=as_admin).status == 404
        assert request.get(f"{live_server.url}/api/images/{image.pk}/thumbnail/", headers=as_admin).status == 404
        thumbnail = request.get(f"{live_server.url}/u/{token}/thumbnails/{image.pk}.jpg")
        assert thumbnail.status == 410 and "your data was deleted on" in thumbnail.text()
    download = request.get(f"{live_server.url}/api/snapshots/{snapshot.name}/download/coco/", headers=as_admin)
    assert download.status == 410 and "erased" in download.json()["withdrawn_reason"]
    assert request.get(f"{live_server.url}/api/images/{kept[0].pk}/file/", headers=as_admin).status == 200
    context.close()
    stranger = browser.new_context()  # no session: the upload token alone, which no longer works
    uploads = stranger.request.post(f"{live_server.url}/api/uploads/", headers={"X-Upload-Token": token},
                                    multipart={"file": {"name": "again.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(synthetic_picture())}})
    assert uploads.status == 401 and "your data was deleted on" in uploads.json()["detail"]
    stranger.close()
    participant.refresh_from_db()
    assert participant.erased_at and participant.upload_token == token and not participant.uploads.exists()
