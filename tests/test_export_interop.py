"""Exports other tools load, and re-imports of our own exports (issue #15).

LabelMe 5.x and "CVAT for images 1.1" exports (structure, and the round trip through our importers to
identical geometry), the participants' own file names in every format (unique, or image ids with
``--names id``), a YOLO data.yaml that names only folders that exist, re-imports of our COCO, masks and
YOLO exports that restore participants and original names without a participants CSV, and the new
formats on the dataset page and in the API.
"""
import io
import json
import xml.etree.ElementTree as ET
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Value
from django.db.models.functions import Concat

from curation.models import Export
from curation.snapshots import build_snapshot
from curation.transfer import export_records, export_snapshot, import_labels
from dataset.formats import (
    DEFAULT_LABEL_MAP, EXPORTERS, ExportNames, FolderTarget, FormatError, ZipTarget, get_exporter, get_importer,
)
from dataset.formats.naming import picture_name
from dataset.formats.yolo import read_data_yaml
from dataset.geometry import normalize_geometry
from jobs.registry import JobArgumentError
from labeling.annotations import import_annotation
from labeling.intake import create_image, ingest_upload, store_upload
from labeling.models import Annotation, Participant, Upload
from tests.conftest import jpeg_bytes, synthetic_picture
from tests.test_formats import META, by_name, make_records

# ---------------------------------------------------------------- plain exporters (no database)

def records_with_everything(tmp_path, n=12):
    """Synthetic records with fingers, unknown fingers, landmarks, nail ids and ignore regions, in every split."""
    records = make_records(tmp_path / "src", n, seed=11)
    for record in records:
        record.original_name = f"IMG_{record.image_id}.HEIC"
    assert any(n.get("base") for r in records for n in r.geometry["nails"])
    assert any(r.geometry["ignore"] for r in records) and any(n.get("id") for r in records for n in r.geometry["nails"])
    assert any(n["finger"] is None for r in records for n in r.geometry["nails"])
    return records


def test_labelme_export_is_labelme_5_with_grouped_landmarks_and_round_trips_exactly(tmp_path):
    records = records_with_everything(tmp_path)
    summary = get_exporter("labelme").export(iter(records), FolderTarget(tmp_path / "out"), META)
    assert summary["images"] == len(records)
    for record in records:
        folder = tmp_path / "out" / record.split
        assert (folder / record.file_name).read_bytes() == Path(record.source_path).read_bytes()  # beside its JSON
        doc = json.loads((folder / (Path(record.file_name).stem + ".json")).read_text())
        assert set(doc) == {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth", "nailset"}
        assert doc["version"].startswith("5.") and doc["flags"] == {} and doc["imageData"] is None
        assert doc["imagePath"] == record.file_name and (doc["imageWidth"], doc["imageHeight"]) == (record.width, record.height)
        assert doc["nailset"]["participant"] == record.participant and doc["nailset"]["original_name"] == record.original_name
        polygons = [s for s in doc["shapes"] if s["shape_type"] == "polygon" and s["label"] != "ignore"]
        points = [s for s in doc["shapes"] if s["shape_type"] == "point"]
        assert len(polygons) == len(record.geometry["nails"])
        assert len({s["group_id"] for s in polygons}) == len(polygons)  # a group per nail
        for shape, nail in zip(polygons, record.geometry["nails"]):
            assert shape["label"] in DEFAULT_LABEL_MAP and DEFAULT_LABEL_MAP[shape["label"]] == nail["finger"]
            assert shape["points"] == nail["polygon"] and set(shape) >= {"label", "points", "group_id", "shape_type", "flags"}
            grouped = {s["label"]: s["points"] for s in points if s["group_id"] == shape["group_id"]}
            assert grouped == ({"base": [nail["base"]], "tip": [nail["tip"]]} if nail["base"] else {})
        ignore = [s for s in doc["shapes"] if s["label"] == "ignore"]
        assert [s["points"] for s in ignore] == record.geometry["ignore"] and all(s["group_id"] is None for s in ignore)

    with ZipTarget(tmp_path / "labelme.zip") as target:
        get_exporter("labelme").export(iter(records), target, META)
    for dataset in (get_importer("labelme").parse(tmp_path / "out"),
                    get_importer("labelme").parse(tmp_path / "labelme.zip", extract_dir=tmp_path / "unzipped")):
        assert dataset.problems == [] and dataset.warnings == []
        images = by_name(dataset)
        for record in records:
            assert normalize_geometry(images[record.file_name].geometry) == record.geometry  # identical, ids included
            assert images[record.file_name].participant == record.participant
            assert images[record.file_name].original_name == record.original_name


def test_cvat_export_is_cvat_for_images_1_1_and_round_trips_exactly(tmp_path):
    records = records_with_everything(tmp_path)
    get_exporter("cvat").export(iter(records), FolderTarget(tmp_path / "out"), META)
    root = ET.parse(tmp_path / "out" / "annotations.xml").getroot()
    assert root.tag == "annotations" and root.findtext("version") == "1.1"
    task = root.find("meta/task")
    assert task.findtext("size") == str(len(records))
    labels = {label.findtext("name"): label.findtext("type") for label in task.find("labels")}
    assert labels["left_thumb"] == labels["right_little"] == labels["nail"] == labels["ignore"] == "polygon"
    assert labels["base"] == labels["tip"] == "points" and labels["nailset"] == "tag" and len(labels) == 15
    images = root.findall("image")
    assert [int(i.get("id")) for i in images] == list(range(len(records)))
    for element, record in zip(images, records):
        assert element.get("name") == record.file_name and element.get("subset") is None  # task files carry none (Datumaro skips mismatches)
        assert (int(element.get("width")), int(element.get("height"))) == (record.width, record.height)
        assert (tmp_path / "out" / "images" / record.file_name).is_file()
        polygons = [p for p in element.findall("polygon") if p.get("label") != "ignore"]
        assert len(polygons) == len(record.geometry["nails"])
        for polygon, nail in zip(polygons, record.geometry["nails"]):
            assert DEFAULT_LABEL_MAP[polygon.get("label")] == nail["finger"]
            assert [[float(v) for v in pair.split(",")] for pair in polygon.get("points").split(";")] == nail["polygon"]
            group = polygon.get("group_id")
            landmarks = {p.get("label"): p.get("points") for p in element.findall("points") if p.get("group_id") == group}
            assert set(landmarks) == ({"base", "tip"} if nail["base"] else set())
            assert polygon.findtext("attribute[@name='nail_id']") == nail.get("id")
    dataset = get_importer("cvat").parse(tmp_path / "out")
    assert dataset.problems == [] and dataset.warnings == []
    imported = by_name(dataset)
    for record in records:
        assert normalize_geometry(imported[record.file_name].geometry) == record.geometry
        assert imported[record.file_name].image_path == str(tmp_path / "out" / "images" / record.file_name)
        assert imported[record.file_name].participant == record.participant  # from the image's "nailset" tag
        assert imported[record.file_name].original_name == record.original_name


def test_yolo_data_yaml_names_only_splits_that_exist(tmp_path):
    records = make_records(tmp_path / "src", 6, seed=2)
    for i, record in enumerate(records):  # train and test only: no val
        record.split = "train" if i % 2 else "test"
    summary = get_exporter("yolo").export(records, FolderTarget(tmp_path / "out"), META)
    data = yaml.safe_load((tmp_path / "out/data.yaml").read_text())
    assert read_data_yaml((tmp_path / "out/data.yaml").read_text()) == data  # our own reader reads what we write
    named = {key: data[key] for key in ("train", "val", "test") if key in data}
    assert named == {"train": "images/train", "val": "images/train", "test": "images/test"}  # val borrows train, said so
    assert all((tmp_path / "out" / folder).is_dir() for folder in named.values())
    assert "no val images" in (tmp_path / "out/data.yaml").read_text() and summary["warnings"]

    for record in records:
        record.split = "train"
    get_exporter("yolo").export(records, FolderTarget(tmp_path / "train-only"), META)
    data = yaml.safe_load((tmp_path / "train-only/data.yaml").read_text())
    assert "test" not in data and data["train"] == data["val"] == "images/train"
    assert sorted(p.name for p in (tmp_path / "train-only/images").iterdir()) == ["train"]


def test_data_yaml_reader_handles_the_usual_spellings():
    assert read_data_yaml("path: ../d  # root\ntrain: images/train\nval: 'images/v al'\nnames: ['a', \"b\"]\n") == {
        "path": "../d", "train": "images/train", "val": "images/v al", "names": ["a", "b"]}
    assert read_data_yaml("names:\n  - left thumb\n  - nail\nnc: 2\n")["names"] == ["left thumb", "nail"]
    assert read_data_yaml("names:\n  0: x\n  1: y\n")["names"] == {0: "x", 1: "y"}
    assert read_data_yaml("names: {0: x, 1: 'y z'}\n")["names"] == {0: "x", 1: "y z"}
    with pytest.raises(FormatError, match="line 2"):
        read_data_yaml("train: a\n  nested: b\n")


def test_export_names_keep_originals_unique_or_use_ids():
    assert picture_name("IMG_0001.HEIC", None, ".jpg") == "IMG_0001.jpg"  # the stored bytes are a JPEG now
    assert picture_name("clip.mp4", 12, ".jpg") == "clip-frame0012.jpg"
    assert picture_name("C:\\Users\\x\\my: hand?.png", None, ".png") == "my_ hand_.png"
    assert picture_name("...", None, ".jpg") == ""
    names = ExportNames()
    assert [names.name(1, ".jpg", "hand.jpg"), names.name(2, ".jpg", "HAND.jpg"), names.name(3, ".png", "hand.png"),
            names.name(4, ".jpg", ""), names.name(5, ".jpg", "hand-2.jpg")] == [
        "hand.jpg", "HAND-2.jpg", "hand-3.png", "0000004.jpg", "hand-2-2.jpg"]  # unique by stem, whatever the case
    ids = ExportNames("id")
    assert ids.name(7, ".jpg", "hand.jpg") == "0000007.jpg"
    with pytest.raises(FormatError, match="names must be one of original, id"):
        ExportNames("bogus")


@pytest.mark.parametrize("fmt", ["coco", "masks", "yolo"])
def test_own_exports_carry_participants_and_original_names(tmp_path, fmt):
    records = records_with_everything(tmp_path, 8)
    records[3].frame_index, records[3].original_name = 12, "clip.mp4"
    get_exporter(fmt).export(iter(records), FolderTarget(tmp_path / fmt), META)
    dataset = get_importer(fmt).parse(tmp_path / fmt)
    assert dataset.problems == []
    images = by_name(dataset)
    for record in records:
        image = images[record.file_name]
        assert image.participant == record.participant and image.image_path
        expected = "clip-frame0012" + Path(record.file_name).suffix if record.frame_index else record.original_name
        assert image.original_name == expected  # a frame comes back as a photo named after its frame
        if fmt != "yolo":  # YOLO keeps neither landmarks nor ignore regions
            assert normalize_geometry(image.geometry) == record.geometry


def test_yolo_import_without_our_metadata_names_no_participant_and_keeps_polygons(tmp_path):
    records = make_records(tmp_path / "src", 6, seed=5)
    get_exporter("yolo").export(iter(records), FolderTarget(tmp_path / "out"), META)
    (tmp_path / "out" / "nailset.json").unlink()
    images = by_name(get_importer("yolo").parse(tmp_path / "out" / "data.yaml"))
    for record in records:
        image = images[record.file_name]
        assert image.participant is None and image.original_name is None
        assert [n["finger"] for n in image.geometry["nails"]] == [n["finger"] for n in record.geometry["nails"]]
        for got, want in zip(image.geometry["nails"], record.geometry["nails"]):
            assert np.allclose(got["polygon"], want["polygon"], atol=0.011)


def test_masks_export_without_geometry_is_traced_back(tmp_path):
    records = make_records(tmp_path / "src", 4, seed=8, sizes=((96, 72),))
    get_exporter("masks").export(iter(records), FolderTarget(tmp_path / "out"), META)
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    for entry in manifest["images"]:
        del entry["geometry"]  # as exports made before it was written
    (tmp_path / "out/manifest.json").write_text(json.dumps(manifest))
    dataset = get_importer("masks").parse(tmp_path / "out")
    assert any("traced" in w for w in dataset.warnings)
    for record in records:
        image = by_name(dataset)[record.file_name]
        assert image.participant == record.participant
        assert [n["finger"] for n in image.geometry["nails"]] == [n["finger"] for n in record.geometry["nails"]]


# ---------------------------------------------------------------- through the platform

NAILS = [
    {"polygon": [[10, 10], [30, 10], [30, 30], [10, 30]], "finger": 2, "base": [20, 28], "tip": [20, 12]},
    {"id": "nail-7", "polygon": [[40, 12], [60, 14], [58, 40], [42, 38]], "finger": None, "base": None, "tip": None},
    {"polygon": [[66, 8.5], [86.25, 8.5], [80, 30]], "finger": 7, "base": [78, 22], "tip": [78.5, 12]},
]
GEOMETRY = {"nails": NAILS, "ignore": [[[5, 50], [25, 50], [25, 68]]]}


def photo(participant, name, shade):
    stored = store_upload(participant, io.BytesIO(jpeg_bytes(synthetic_picture(96, 72, (shade, 90, 160)))), name)
    return ingest_upload(stored.upload)[0]


@pytest.fixture
def snapshot(db):
    """Three participants; two sent a "hand.jpg", one also a video whose frame 12 is labelled."""
    people = [Participant.objects.create(code=code) for code in ("PA", "PB", "PC")]
    images = [photo(people[0], "hand.jpg", 10), photo(people[1], "hand.jpg", 60), photo(people[1], "IMG_7.HEIC", 110),
              photo(people[2], "nails.png", 160)]
    video = Upload.objects.create(participant=people[2], original_name="clip.mp4", content_type="video/mp4",
                                  kind=Upload.Kind.VIDEO, size=1, sha256="cd" * 32, status=Upload.Status.READY)
    frame, _ = create_image(people[2], synthetic_picture(96, 72, (200, 30, 30)), "JPEG", upload=video, frame_index=12)
    for image in [*images, frame]:
        import_annotation(image, GEOMETRY, status="accepted", note="test")
    return build_snapshot("interop")


def exported_images(folder: Path) -> set[str]:
    """The names of the pictures in an export (not its mask PNGs): under an images/ folder, or beside their JSON."""
    return {p.name for p in folder.rglob("*") if p.suffix in (".jpg", ".png")
            and ("images" in p.relative_to(folder).parts or p.with_suffix(".json").exists())}


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_every_format_keeps_the_participants_file_names(snapshot, tmp_path, fmt):
    call_command("export_snapshot", "interop", "--format", fmt, "--out", str(tmp_path / "orig"), stdout=StringIO())
    names = exported_images(tmp_path / "orig")
    assert names == {"hand.jpg", "hand-2.jpg", "IMG_7.jpg", "nails.jpg", "clip-frame0012.jpg"}, names
    call_command("export_snapshot", "interop", "--format", fmt, "--out", str(tmp_path / "ids"), "--names", "id",
                 stdout=StringIO())
    assert exported_images(tmp_path / "ids") == {f"{item.image_id:07d}.jpg" for item in snapshot.items.all()}


def test_export_job_refuses_an_unknown_naming(snapshot):
    from curation.job_kinds import _export_arguments

    assert _export_arguments({"snapshot": "interop", "format": "labelme", "names": "id"})["names"] == "id"
    assert "names" not in _export_arguments({"snapshot": "interop", "format": "labelme"})
    with pytest.raises(JobArgumentError, match="names must be original or id"):
        _export_arguments({"snapshot": "interop", "format": "labelme", "names": "sha"})
    with pytest.raises(CommandError):
        call_command("export_snapshot", "interop", "--format", "cvat", "--names", "sha", stdout=StringIO())


def forget_participants():
    """Rename every participant, so that a re-import has to bring the codes back from the export itself."""
    Participant.objects.update(code=Concat("code", Value("-before")))


def reimported():
    """(original name, participant code, geometry) of each image the re-import created."""
    return sorted(((a.image.upload.original_name, a.image.participant.code, a.geometry)
                   for a in Annotation.objects.select_related("image__upload", "image__participant")
                   .exclude(image__participant__code__endswith="-before")), key=lambda row: row[:2])


@pytest.mark.parametrize("fmt", ["coco", "masks", "labelme", "cvat"])
def test_own_export_reimports_without_a_participants_csv(snapshot, tmp_path, fmt):
    export_snapshot(snapshot, fmt, out=str(tmp_path / fmt))
    forget_participants()
    report = import_labels(fmt, str(tmp_path / fmt))
    assert report.failed_files == [] and report.labelled == 5 and report.participants_created == 3
    again = reimported()
    assert [row[:2] for row in again] == sorted(  # the export was named hand.jpg and hand-2.jpg; both were hand.jpg
        [("hand.jpg", "PA"), ("hand.jpg", "PB"), ("IMG_7.HEIC", "PB"), ("nails.png", "PC"), ("clip-frame0012.jpg", "PC")])
    assert all(geometry == normalize_geometry(GEOMETRY) for _, _, geometry in again)  # identical, ids included


def test_own_yolo_export_reimports_with_participants_and_polygons(snapshot, tmp_path):
    export_snapshot(snapshot, "yolo", out=str(tmp_path / "yolo"))
    forget_participants()
    report = import_labels("yolo", str(tmp_path / "yolo"))
    assert report.failed_files == [] and report.labelled == 5
    for annotation in Annotation.objects.exclude(image__participant__code__endswith="-before"):
        assert annotation.image.participant.code in ("PA", "PB", "PC")
        assert [n["finger"] for n in annotation.geometry["nails"]] == [2, None, 7]
        for got, want in zip(annotation.geometry["nails"], NAILS):
            assert np.allclose(got["polygon"], want["polygon"], atol=0.011)
    # without our nailset.json a YOLO export names nobody: the file is refused until a participant is given
    (tmp_path / "yolo" / "nailset.json").unlink()
    Participant.objects.exclude(code__endswith="-before").update(code=Concat("code", Value("-again")))
    report = import_labels("yolo", str(tmp_path / "yolo"))
    assert report.labelled == 0 and "no participant" in json.dumps(report.failed_files)
    assert import_labels("yolo", str(tmp_path / "yolo"), default_participant="PZ").labelled == 5


def test_cvat_export_reimports_to_identical_geometry(snapshot, tmp_path):
    export_snapshot(snapshot, "cvat", out=str(tmp_path / "cvat"))
    forget_participants()
    report = import_labels("cvat", str(tmp_path / "cvat" / "annotations.xml"), default_participant="PX")
    assert report.failed_files == [] and report.labelled == 5
    again = reimported()
    assert len(again) == 5 and all(geometry == normalize_geometry(GEOMETRY) for _, _, geometry in again)


def test_dataset_page_and_api_offer_every_registered_format(snapshot, client_for, client, users):
    client.force_login(users["admin"])
    response = client.get("/dataset/")
    assert response.status_code == 200
    page = response.content.decode()
    admin = client_for("admin")
    for fmt, label in (("labelme", "LabelMe"), ("cvat", "CVAT"), ("coco", "COCO")):
        assert f'data-export="interop" data-format="{fmt}">Export {label}</button>' in page
    assert admin.post("/api/snapshots/interop/export/", {"format": "cvat", "names": "id"}, format="json").status_code == 202
    refused = admin.post("/api/snapshots/interop/export/", {"format": "voc"}, format="json")
    assert refused.status_code == 400 and "voc" in json.dumps(refused.json())
    assert admin.post("/api/snapshots/interop/export/", {"format": "coco", "names": "x"}, format="json").status_code == 400
    schema = admin.get("/api/schema/?format=json").json()
    download = schema["paths"]["/api/snapshots/{name}/download/{fmt}/"]["get"]["parameters"]
    assert set(next(p for p in download if p["name"] == "fmt")["schema"]["enum"]) == set(EXPORTERS)
    export_snapshot(snapshot, "labelme")
    response = admin.get("/api/snapshots/interop/download/labelme/")
    assert response.status_code == 200 and Export.objects.filter(format="labelme").exists()
    import zipfile
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert {"hand.jpg", "hand-2.jpg"} <= {Path(n).name for n in archive.namelist()}


def test_export_records_name_frames_and_collisions(snapshot):
    names = [record.file_name for record in export_records(snapshot)]
    assert len(names) == len(set(n.casefold() for n in names)) == 5
    frame = next(r for r in export_records(snapshot) if r.frame_index is not None)
    assert (frame.file_name, frame.original_name, frame.frame_index) == ("clip-frame0012.jpg", "clip.mp4", 12)


def test_import_command_reads_our_masks_export_back(snapshot, tmp_path):
    call_command("export_snapshot", "interop", "--format", "masks", "--out", str(tmp_path / "masks"), stdout=StringIO())
    forget_participants()
    out = StringIO()
    call_command("import_labels", str(tmp_path / "masks"), "--format", "masks", stdout=out)
    assert "5 images labelled" in out.getvalue(), out.getvalue()
    assert sorted(code for _, code, _ in reimported()) == ["PA", "PB", "PB", "PC", "PC"]
