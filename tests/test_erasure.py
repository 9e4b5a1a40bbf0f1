"""Erasure that really erases (issue #13, rows 1-4): one function, reached from the participant page, the
admin (with a confirmation page) and the API (erase and DELETE); it reaches uploads, images, labels,
snapshot rows, export zips and folders, training-data copies, predictions and job records."""
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from curation.models import Export, SnapshotItem
from curation.snapshots import build_snapshot
from curation.transfer import export_snapshot
from jobs.models import Job
from jobs.runner import enqueue_job, execute_job
from labeling.annotations import import_annotation
from labeling.erasure import ERASURE_STEPS, erasure_plan
from labeling.intake import store_upload
from labeling.models import AnnotationRevision, Image, Participant, Upload
from tests.conftest import jpeg_bytes, make_user, synthetic_picture


def nail(x, finger):
    return {"polygon": [[x, 5], [x + 8, 5], [x + 8, 20], [x, 20]], "finger": finger, "base": [x + 4, 18], "tip": [x + 4, 7]}


def photographed(participant, count=2, prefix="photo"):
    """Uploads through intake (raw file on disk, an ingest job, image, thumbnail) with accepted labels."""
    images = []
    for n in range(count):
        seed = participant.pk * 31 + n * 7
        data = jpeg_bytes(synthetic_picture(64, 48, (seed % 256, (seed * 3) % 256, 90)))
        stored = store_upload(participant, io.BytesIO(data), f"{prefix}-{participant.code}-{n}.jpg")
        job, _ = enqueue_job("ingest_upload", {"upload_id": stored.upload.pk}, send=False)
        assert execute_job(job.pk).status == "succeeded"
        image = Image.objects.get(upload=stored.upload)
        import_annotation(image, {"nails": [nail(4, 1), nail(30, 2)]}, status="accepted", note="test")
        images.append(image)
    return images


def consenting(code):
    from django.utils import timezone

    return Participant.objects.create(code=code, consent_at=timezone.now(), consent_version=settings.NAILSET_CONSENT_VERSION)


def traces_on_disk(sha256s: set[str]) -> list[str]:
    """Every file under MEDIA_ROOT (and every member of every zip) whose bytes hash to one of ``sha256s``
    or that names one of them."""
    found = []
    needles = [s.encode() for s in sha256s]
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() in sha256s or any(n in data for n in needles):
            found.append(str(path))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    content = archive.read(member)
                    if hashlib.sha256(content).hexdigest() in sha256s or any(n in content for n in needles):
                        found.append(f"{path}::{member}")
    return found


def their_files(participant) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for kind in ("uploads", "images", "thumbnails") for p in (root / kind / str(participant.pk)).rglob("*") if p.is_file()]


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Files go once the erasure has committed: run the on-commit callbacks of what is inside."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_every_app_registers_its_erasure_step():
    assert {"training_data", "exports", "snapshots", "prelabel", "jobs", "media"} <= set(ERASURE_STEPS)


# --- Row 1: the participant page -----------------------------------------------------------------------

def test_page_urls_have_names_of_their_own(participant):
    token = participant.upload_token
    assert reverse("participant-page-erase", args=[token]) == f"/u/{token}/erase"
    assert reverse("participant-erase", args=[participant.code]) == f"/api/participants/{participant.code}/erase/"
    page = Client().get(participant.upload_path).content.decode()
    assert f'href="/u/{token}/erase"' in page and "/api/participants/" not in page


def test_delete_my_data_asks_first_then_erases_and_the_old_link_says_so(participant, on_commit):
    images = photographed(participant, 2)
    other = consenting("P-OTHER")
    kept = photographed(other, 1)[0]
    client, token = Client(), participant.upload_token

    confirm = client.get(f"/u/{token}/erase")
    assert confirm.status_code == 200 and b"Delete your data?" in confirm.content
    text = confirm.content.decode()
    assert "<strong>2</strong> photos and videos you sent" in text and "<strong>2</strong> sets of nail outlines" in text
    assert Image.objects.filter(participant=participant).count() == 2  # asking erases nothing

    refused = client.post(f"/u/{token}/erase", {"confirm": "yes"})
    assert refused.status_code == 400 and Image.objects.filter(participant=participant).count() == 2

    with on_commit():
        done = client.post(f"/u/{token}/erase", {"confirm": "DELETE"})
    assert done.status_code == 200 and b"Your data was deleted" in done.content
    assert b"<strong>2</strong> pictures made from them" in done.content
    assert not their_files(participant) and not Upload.objects.filter(participant=participant).exists()
    assert not Path(images[0].file.path).exists() and Path(kept.file.path).exists()

    participant.refresh_from_db()
    assert participant.upload_token == token and participant.erased_at and participant.consent_at is None
    old_link = Client().get(f"/u/{token}/")
    assert old_link.status_code == 410 and b"your data was deleted on" in old_link.content
    assert b"replaced by a new one" not in old_link.content
    assert Client().post(f"/u/{token}/consent", {"version": settings.NAILSET_CONSENT_VERSION, "agree": "yes"}).status_code == 410
    assert Client().get(f"/u/{token}/erase").status_code == 410
    assert Client().get(f"/u/{token}/thumbnails/{images[0].pk}.jpg").status_code == 410
    uploader = APIClient()
    uploader.credentials(HTTP_X_UPLOAD_TOKEN=token)
    response = uploader.post("/api/uploads/", {"file": ("again.jpg", jpeg_bytes(synthetic_picture()))}, format="multipart")
    assert response.status_code == 401 and "your data was deleted on" in response.json()["detail"]
    assert not Upload.objects.filter(participant=participant).exists()
    participant.refresh_from_db()
    assert participant.consent_at is None
    assert participant.erasure_record["history"][0]["requested_by"] == "participant (upload page)"


# --- Row 2: snapshots, their exports, training data -----------------------------------------------------

def test_erasure_reaches_snapshot_rows_export_zips_folders_and_training_data(participant, client_for, on_commit, tmp_path):
    from training.runs import training_data_dir

    images = photographed(participant, 2)
    others = [consenting(f"P-KEEP{n}") for n in range(3)]
    for other in others:
        photographed(other, 1, prefix="keep")
    snapshot = build_snapshot("with-them")
    export_snapshot(snapshot, "coco")
    export_snapshot(snapshot, "masks")
    folder = tmp_path / "coco-folder"
    export_snapshot(snapshot, "coco", out=str(folder))
    Job.objects.create(kind="export_snapshot", key="export_snapshot:test", status=Job.Status.SUCCEEDED,
                       arguments={"snapshot": snapshot.name, "format": "coco", "out": str(folder)},
                       result={"path": str(folder), "size": 1, "format": "coco"})
    cache = training_data_dir(snapshot)
    theirs = {image.sha256 for image in images}
    assert traces_on_disk(theirs)  # in the zips, the folder's copy is outside MEDIA_ROOT
    assert any(folder.rglob("*.jpg")) or any(folder.rglob("*.png"))
    admin = client_for("admin")
    assert admin.get(f"/api/snapshots/{snapshot.name}/download/coco/").status_code == 200

    plan = {line.key: line.count for line in erasure_plan(participant)}
    assert plan["snapshot_items"] == 2 and plan["exports"] == 2 and plan["export_folders"] == 1 and plan["training_data"] == 1

    with on_commit():
        response = admin.post(f"/api/participants/{participant.code}/erase/")
    assert response.status_code == 200
    erased = response.json()["erased"]
    assert erased["snapshot_items"] == 2 and erased["exports"] == 2 and erased["export_folders"] == 1

    assert traces_on_disk(theirs) == []
    assert not folder.exists() and not cache.exists()
    assert not SnapshotItem.objects.filter(participant=participant).exists()
    assert not SnapshotItem.objects.filter(image_sha256__in=theirs).exists()
    snapshot.refresh_from_db()
    assert snapshot.holds_erased_data and snapshot.erased_items == 2
    assert SnapshotItem.objects.filter(snapshot=snapshot).count() == 3  # the others stay
    for fmt in ("coco", "masks"):
        gone = admin.get(f"/api/snapshots/{snapshot.name}/download/{fmt}/")
        assert gone.status_code == 410 and "erased" in gone.json()["detail"] and gone.json()["withdrawn_reason"]
    assert Export.objects.filter(snapshot=snapshot, withdrawn_at__isnull=False).count() == 2
    assert admin.get(f"/api/snapshots/{snapshot.name}/download/yolo/").status_code == 404  # never exported: not 410
    job = Job.objects.get(key="export_snapshot:test")
    assert job.result["withdrawn_at"] and "deleted" in job.result["withdrawn_reason"]

    export_snapshot(snapshot, "coco")  # exported again: without them
    again = admin.get(f"/api/snapshots/{snapshot.name}/download/coco/")
    assert again.status_code == 200
    assert traces_on_disk(theirs) == []
    assert admin.get(f"/api/snapshots/{snapshot.name}/").json()["holds_erased_data"] is True


def test_an_export_that_raced_an_erasure_is_thrown_away(participant, on_commit, tmp_path, monkeypatch):
    """A zip written while a participant in it was erased could hold their pixels: it is not kept."""
    from curation import transfer

    victims = [participant, consenting("P-LEAVES")]
    for person in victims + [consenting("P-KEEP")]:
        photographed(person, 1)
    snapshot = build_snapshot("raced")
    real_records = transfer.export_records

    def records_then_erase(snap, *args):
        yield from real_records(snap, *args)
        from labeling.erasure import erase_participant

        with on_commit():
            erase_participant(victims.pop())

    monkeypatch.setattr(transfer, "export_records", records_then_erase)
    with pytest.raises(transfer.TransferError, match="erased their data while it was being exported"):
        export_snapshot(snapshot, "coco")
    with pytest.raises(transfer.TransferError, match="erased their data while it was being exported"):
        export_snapshot(snapshot, "coco", out=str(tmp_path / "out"))
    assert not Export.objects.filter(snapshot=snapshot).exists() and not (tmp_path / "out").exists()


def test_a_folder_export_erased_after_its_last_check_is_deleted_too(participant, on_commit, tmp_path, monkeypatch):
    """``export_snapshot --out`` writes outside the managed store. An erasure that commits after the export's
    last check but before its job was recorded used to find no finished job to withdraw, and left the
    participant's photos in the folder: the job is now recorded in the same locked transaction as the check."""
    from curation import transfer

    for person in (participant, consenting("P-KEEP")):
        photographed(person, 1)
    snapshot = build_snapshot("erased-right-after")
    folder = tmp_path / "out"
    real_export = transfer.export_snapshot

    def export_then_erase(*args, **kwargs):
        result = real_export(*args, **kwargs)
        assert folder.is_dir()  # written and checked: the erasure comes now, before the job function returns
        from labeling.erasure import erase_participant

        with on_commit():
            erased = erase_participant(participant)
        assert erased["export_folders"] == 1
        return result

    monkeypatch.setattr(transfer, "export_snapshot", export_then_erase)
    job, _ = enqueue_job("export_snapshot", {"snapshot": snapshot.name, "format": "coco", "out": str(folder)}, send=False)
    job = execute_job(job.pk)
    assert not folder.exists()
    assert job.status == Job.Status.SUCCEEDED and job.result["withdrawn_at"] and "deleted" in job.result["withdrawn_reason"]
    assert job.result["path"] == str(folder)


def test_a_failed_folder_export_leaves_no_partial_folder(participant, tmp_path, monkeypatch):
    """A folder export that stops half-way (a photo gone, the disk full) removes what it wrote: the half
    folder may hold photos of someone erased meanwhile, and no finished job points at it for erasure."""
    from curation import transfer

    for person in (participant, consenting("P-KEEP")):
        photographed(person, 1)
    snapshot = build_snapshot("half-written")
    real_records = transfer.export_records

    def first_record_then_fail(snap, *args):
        records = real_records(snap, *args)
        yield next(records)
        raise FileNotFoundError("a photo was erased while it was being exported")

    monkeypatch.setattr(transfer, "export_records", first_record_then_fail)
    with pytest.raises(FileNotFoundError):
        export_snapshot(snapshot, "coco", out=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    given = tmp_path / "given"  # an empty folder the user gave is emptied again, not removed
    given.mkdir()
    with pytest.raises(FileNotFoundError):
        export_snapshot(snapshot, "coco", out=str(given))
    assert given.is_dir() and not any(given.iterdir())


# --- Row 3: the API's DELETE ----------------------------------------------------------------------------

def test_api_delete_erases_keeps_the_record_and_never_500s(participant, client_for, on_commit):
    images = photographed(participant, 2)
    photographed(consenting("P-KEEP"), 1)
    build_snapshot("has-them")  # SnapshotItem.participant is PROTECT: a plain delete was a 500
    files = [Path(f.path) for image in images for f in (image.upload.file, image.file, image.thumbnail) if f]
    assert len(set(files)) >= 4 and all(f.exists() for f in files)  # images, thumbnails (and raw uploads when kept)
    admin = client_for("admin")
    with on_commit():
        response = admin.delete(f"/api/participants/{participant.code}/")
    assert response.status_code == 204
    assert their_files(participant) == [] and not any(f.exists() for f in files)
    participant.refresh_from_db()  # the row stays, marked erased, with what went and who asked
    assert participant.erased_at and participant.erasure_record["history"][-1]["removed"]["images"] == 2
    assert participant.erasure_record["history"][-1]["requested_by"] == "admin boss (API)"
    assert not AnnotationRevision.objects.filter(annotation__image__participant=participant).exists()
    assert admin.get(f"/api/participants/{participant.code}/").json()["erased_at"]
    # Erasing again is harmless; the link gets no new token.
    assert admin.delete(f"/api/participants/{participant.code}/").status_code == 204
    assert admin.post(f"/api/participants/{participant.code}/rotate-token/").status_code == 409
    assert client_for("reviewer").delete("/api/participants/P-KEEP/").status_code == 403
    assert Participant.objects.get(code="P-KEEP").erased_at is None


def test_job_records_naming_their_files_are_blanked(participant, client_for, on_commit):
    images = photographed(participant, 1, prefix="holiday-in-rome")
    other = photographed(consenting("P-KEEP"), 1, prefix="keep")[0]
    mine = Job.objects.get(kind="ingest_upload", arguments__upload_id=images[0].upload_id)
    theirs = Job.objects.get(kind="ingest_upload", arguments__upload_id=other.upload_id)
    assert "holiday-in-rome" in mine.message and mine.result["image_ids"] == [images[0].pk]
    unrelated_log = "rejected holiday-in-rome-P001-0.jpg.bak: not a photo"  # another file whose name contains theirs
    Job.objects.filter(pk=theirs.pk).update(log=unrelated_log)
    with on_commit():
        erased = client_for("admin").post(f"/api/participants/{participant.code}/erase/").json()["erased"]
    assert erased["job_records"] == 1
    mine.refresh_from_db()
    assert "holiday-in-rome" not in mine.message and "[erased]" in mine.message
    assert mine.arguments["upload_id"] is None and mine.result["image_ids"] == []
    theirs.refresh_from_db()
    assert theirs.arguments["upload_id"] == other.upload_id and theirs.log == unrelated_log


def test_prelabel_records_go_too(participant, on_commit):
    from django.utils import timezone

    from labeling.erasure import erase_participant
    from prelabel.models import OpenEvent, Prediction
    from training.models import ModelVersion

    image = photographed(participant, 1)[0]
    model = ModelVersion.objects.create(name="m1", weights="models/m1/model.pt", snapshot_content_hash="x")
    Prediction.objects.create(image=image, model_version=model, draft_state="drafted", overlay_png=b"png")
    OpenEvent.objects.create(image=image, user=make_user("someone"), annotation_version=1, opened_at=timezone.now())
    plan = {line.key: line.count for line in erasure_plan(participant)}
    assert plan["predictions"] == 1 and plan["open_events"] == 1
    with on_commit():
        counts = erase_participant(participant)
    assert counts["predictions"] == 1 and not Prediction.objects.exists() and not OpenEvent.objects.exists()


# --- Row 4: the Django admin ----------------------------------------------------------------------------

@pytest.fixture
def admin_browser(db):
    client = Client()
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))
    return client


def test_admin_erase_action_confirms_first_and_lists_what_goes(participant, admin_browser, on_commit):
    photographed(participant, 2)
    other = consenting("P-KEEP")
    url = "/admin/labeling/participant/"
    asked = admin_browser.post(url, {"action": "erase_data", "_selected_action": [participant.pk]})
    assert asked.status_code == 200 and b"Are you sure you want to erase" in asked.content
    assert b"2 photos and videos you sent" in asked.content and b"2 pictures made from them" in asked.content
    assert Image.objects.filter(participant=participant).count() == 2  # nothing erased yet
    participant.refresh_from_db()
    assert participant.erased_at is None

    with on_commit():
        done = admin_browser.post(url, {"action": "erase_data", "_selected_action": [participant.pk], "post": "yes"})
    assert done.status_code == 302
    participant.refresh_from_db()
    assert participant.erased_at and not their_files(participant)
    assert participant.erasure_record["history"][0]["requested_by"] == "admin chief"
    other.refresh_from_db()
    assert other.erased_at is None
    link = Client().get(participant.upload_path)
    assert link.status_code == 410 and b"your data was deleted on" in link.content


def test_admin_cannot_delete_a_participant_row(participant, admin_browser):
    assert admin_browser.get(f"/admin/labeling/participant/{participant.pk}/delete/").status_code == 403
    changelist = admin_browser.get("/admin/labeling/participant/").content
    assert b'value="delete_selected"' not in changelist and b'value="erase_data"' in changelist
    assert Participant.objects.filter(pk=participant.pk).exists()
