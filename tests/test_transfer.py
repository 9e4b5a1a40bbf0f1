"""Snapshot export and label import through the platform: jobs, commands, atomicity, round trips."""
import json
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from curation.models import Export
from curation.snapshots import build_snapshot
from curation.transfer import export_snapshot, import_labels
from dataset.formats import read_masks_manifest
from labeling.models import Annotation, Image, Participant, Upload
from tests.conftest import jpeg_bytes, synthetic_picture
from tests.test_snapshots import labelled_dataset
from tests.test_uploads import media_files

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nails-cc0"


def geometry_by_sha(items):
    return {item.image_sha256: item.geometry for item in items}


def test_export_formats_as_downloadable_zips(db, client_for):
    labelled_dataset(4, 2)
    snapshot = build_snapshot("exp")
    for fmt in ("coco", "masks", "yolo"):
        result = export_snapshot(snapshot, fmt)
        assert result["size"] > 0
    assert Export.objects.filter(snapshot=snapshot).count() == 3
    response = client_for("admin").get("/api/snapshots/exp/download/masks/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["content_hash"] == snapshot.content_hash and len(manifest["images"]) == 8
    assert client_for("reviewer").get("/api/snapshots/exp/download/masks/").status_code == 403
    assert client_for("admin").get("/api/snapshots/exp/download/voc/").status_code == 404


def test_coco_import_snapshot_export_round_trip(db, tmp_path):
    """COCO import -> snapshot -> COCO export -> import again gives the same polygons, classes, keypoints."""
    labelled_dataset(3, 2)
    first = build_snapshot("origin")
    out = tmp_path / "coco"
    call_command("export_snapshot", "origin", "--format", "coco", "--out", str(out), stdout=StringIO())
    participants_csv = tmp_path / "participants.csv"
    rows = ["file_name,participant"] + [f"{item.image_id:07d}.png,NEW-{item.participant.code}" for item in first.items.all()]
    participants_csv.write_text("\n".join(rows) + "\n")
    report = import_labels("coco", str(out), participants_csv=str(participants_csv))
    assert report.failed_files == [] and report.labelled == 6 and report.images_created == 6
    second = build_snapshot("reimported")
    again = {i.image_sha256: i.geometry for i in second.items.filter(participant__code__startswith="NEW-")}
    assert again == geometry_by_sha(first.items.all())


def test_import_is_all_or_nothing_per_file(db, tmp_path, django_capture_on_commit_callbacks):
    folder = tmp_path / "labelme"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(jpeg_bytes(synthetic_picture(80, 60)))
    (folder / "bad.jpg").write_bytes(jpeg_bytes(synthetic_picture(80, 60, (10, 200, 30))))
    shape = {"label": "nail", "shape_type": "polygon", "points": [[10, 10], [30, 10], [30, 30], [10, 30]]}
    for name, shapes in (("good", [shape]), ("bad", [shape, {**shape, "points": [[5, 5], [500, 5], [5, 30]]}])):
        (folder / f"{name}.json").write_text(json.dumps({"imagePath": f"{name}.jpg", "imageWidth": 80, "imageHeight": 60, "shapes": shapes}))
    before = media_files()
    with django_capture_on_commit_callbacks(execute=True):  # the raw upload goes once its ingest is committed
        report = import_labels("labelme", str(folder), default_participant="LM1")
    assert report.labelled == 1 and [f["file"] for f in report.failed_files] == ["bad.json"]
    assert "outside" in report.failed_files[0]["reason"]
    assert Image.objects.count() == 1 and Upload.objects.count() == 1  # nothing of bad.json stays
    image = Image.objects.get()
    assert media_files() - before == {Path(image.file.path), Path(image.thumbnail.path)}  # the raw upload is not kept
    assert image.upload.sha256 and not image.upload.file


def test_import_command_reports_unknown_labels_and_leaves_labelled_images_alone(db, tmp_path):
    Participant.objects.create(code="CV1")
    (tmp_path / "hand.jpg").write_bytes(jpeg_bytes(synthetic_picture(80, 60)))
    (tmp_path / "annotations.xml").write_text("""<annotations><version>1.1</version>
      <image id="0" name="hand.jpg" width="80" height="60">
        <polygon label="L2" points="10,10;30,10;30,30;10,30"/>
        <points label="base" points="20,28"/><points label="tip" points="20,12"/>
        <polygon label="toenail" points="40,10;60,10;60,30"/>
      </image></annotations>""")
    out = StringIO()  # an unknown label refuses the file (tests/test_import_honesty.py) unless told to skip it
    call_command("import_labels", str(tmp_path / "annotations.xml"), "--format", "cvat", "--participant", "CV1",
                 "--skip-invalid", stdout=out)
    assert "1 images labelled" in out.getvalue() and "toenail" in out.getvalue()
    annotation = Annotation.objects.get()
    nail = annotation.geometry["nails"][0]
    assert nail["finger"] == 2 and nail["base"] == [20.0, 28.0] and annotation.status == "accepted"
    out = StringIO()
    call_command("import_labels", str(tmp_path / "annotations.xml"), "--format", "cvat", "--participant", "CV1",
                 "--skip-invalid", stdout=out)
    assert "1 left alone" in out.getvalue() and Annotation.objects.get().version == 1


@pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} is not there (CI always has it)")
def test_shared_dataset_imports_snapshots_and_exports_in_all_formats(db, tmp_path):
    report = import_labels("coco", str(SHARED / "annotations.coco.json"), participants_csv=str(SHARED / "participants.csv"),
                           images_dir=str(SHARED / "images"))
    assert report.failed_files == [] and report.labelled == 40 and report.unknown_labels == {}
    snapshot = build_snapshot("nails-cc0", seed=0)
    assert snapshot.counts["images"] == 40
    assert sum(s["nails"] for s in snapshot.counts["splits"].values()) == 227
    for fmt in ("coco", "masks", "yolo"):
        export_snapshot(snapshot, fmt, out=str(tmp_path / fmt))
    manifest = read_masks_manifest(str(tmp_path / "masks"))
    assert len(manifest["images"]) == 40
