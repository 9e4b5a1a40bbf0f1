"""Suggested marks (dataset/geometry.py, issue #16) in exports and training data: COCO carries them and
reads them back; YOLO, LabelMe and CVAT export only confirmed fields; rasters (the masks export, training)
read suggested fields as missing unless asked. Plain pytest, no Django."""
import json

from dataset.formats import ExportRecord, FolderTarget, get_exporter, get_importer
from dataset.raster import UNKNOWN_CLASS, rasterize
from tests.test_formats import META, coco_file, write_image

SQUARE = [[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]
OTHER = [[40.0, 10.0], [60.0, 10.0], [60.0, 30.0], [40.0, 30.0]]
GEOMETRY = {"nails": [
    {"id": "a", "polygon": SQUARE, "finger": 2, "base": [20.0, 29.0], "tip": [20.0, 11.0],
     "suggested": {"finger": 0.81, "landmarks": 0.4}},
    {"polygon": OTHER, "finger": 3, "base": [50.0, 29.0], "tip": [50.0, 11.0], "suggested": {"landmarks": 0.97}},
    {"polygon": [[10.0, 40.0], [30.0, 40.0], [30.0, 60.0], [10.0, 60.0]], "finger": 4, "base": [20.0, 59.0],
     "tip": [20.0, 41.0]},
], "ignore": []}


def record(tmp_path):
    source = write_image(tmp_path / "src.jpg", 80, 64)
    return ExportRecord(image_id=1, file_name="hand.jpg", source_path=source, width=80, height=64, participant="p1",
                        split="train", geometry=GEOMETRY, sha256="0" * 64)


def test_coco_carries_the_marks_and_reads_them_back(tmp_path):
    get_exporter("coco").export([record(tmp_path)], FolderTarget(tmp_path / "out"), META)
    data = json.loads((tmp_path / "out/annotations/instances_train.json").read_text())
    first, second, third = data["annotations"]
    assert first["category_id"] == 2 and first["num_keypoints"] == 2              # fingers and keypoints as before
    assert first["attributes"] == {"nail_id": "a", "suggested": ["finger", "landmarks"],
                                   "suggestion_confidence": {"finger": 0.81, "landmarks": 0.4}}
    assert second["attributes"] == {"suggested": ["landmarks"], "suggestion_confidence": {"landmarks": 0.97}}
    assert "attributes" not in third
    [image] = get_importer("coco").parse(tmp_path / "out").images
    assert image.geometry == GEOMETRY


def test_coco_import_refuses_bad_marks_instead_of_confirming_them(tmp_path):
    square = [10, 10, 30, 10, 30, 30, 10, 30]
    good = {"suggested": ["finger"], "suggestion_confidence": {"finger": 0.5}}
    bad = [{"suggested": ["finger"], "suggestion_confidence": {"finger": 1.5}},
           {"suggested": ["landmarks"], "suggestion_confidence": {"landmarks": 0.5}},   # no keypoints: nothing to mark
           {"suggested": "finger"}, {"suggested": ["hand"], "suggestion_confidence": {"hand": 0.5}}]
    cats = [{"id": 1, "name": "left_index", "keypoints": ["base", "tip"]}]
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "segmentation": [square], "iscrowd": 0, "attributes": a}
            for i, a in enumerate([good] + bad)]
    dataset = get_importer("coco").parse(coco_file(tmp_path, anns, cats))
    [image] = dataset.images
    assert image.geometry["nails"] == [{"polygon": SQUARE, "finger": 2, "base": None, "tip": None,
                                        "suggested": {"finger": 0.5}}]
    assert len(dataset.problems) == 4 and all("nail left out" in p for p in dataset.problems)


def test_formats_without_room_for_marks_export_confirmed_fields_only(tmp_path):
    get_exporter("yolo").export([record(tmp_path)], FolderTarget(tmp_path / "yolo"), META)
    classes = [int(line.split()[0]) for line in (tmp_path / "yolo/labels/train/hand.txt").read_text().splitlines()
               if line.strip()]
    assert classes == [10, 2, 3]                  # class 10 = finger unknown: the suggested one is not exported
    get_exporter("labelme").export([record(tmp_path)], FolderTarget(tmp_path / "labelme"), META)
    [doc] = [json.loads(p.read_text()) for p in (tmp_path / "labelme").rglob("*.json")]
    labels = [s["label"] for s in doc["shapes"]]
    assert labels == ["nail", "left_middle", "left_ring", "base", "tip"]     # suggested landmarks left out too


def test_rasters_read_suggested_fields_as_missing_unless_asked(tmp_path):
    confirmed = rasterize(GEOMETRY, 80, 64)
    assert confirmed.classes[20, 20] == UNKNOWN_CLASS and confirmed.classes[20, 50] == 3
    assert not confirmed.field[20, 20].any() and not confirmed.field[20, 50].any() and confirmed.field[50, 20].any()
    everything = rasterize(GEOMETRY, 80, 64, use_suggested=True)
    assert everything.classes[20, 20] == 2 and everything.field[20, 50].any()
    get_exporter("masks").export([record(tmp_path)], FolderTarget(tmp_path / "masks"), META)
    [entry] = json.loads((tmp_path / "masks/manifest.json").read_text())["images"]
    assert (entry["nails_with_class"], entry["nails_with_landmarks"]) == (2, 1)
    assert entry["geometry"]["nails"][0]["suggested"] == {"finger": 0.81, "landmarks": 0.4}
