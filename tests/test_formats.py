"""Tests for dataset.formats: exporters (coco, masks, yolo), importers (coco, labelme, cvat), safe unzip.

Plain pytest + hypothesis, no Django.
"""
import io
import json
import math
import os
import random
import stat
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dataset.formats import (
    DEFAULT_LABEL_MAP, EXPORTERS, IMPORTERS, ExportRecord, FolderTarget, FormatError, MasksReader,
    UnsafeArchiveError, ZipTarget, get_exporter, get_importer, load_masks_sample, normalize_label, open_target,
    prepare_label_map, read_masks_manifest, resolve_label, safe_extract,
)
from dataset.formats.coco import UNKNOWN_CATEGORY_ID, rle_counts_from_string, rle_decode
from dataset.geometry import FINGER_NAMES, normalize_geometry, validate_geometry
from dataset.raster import UNKNOWN_CLASS, rasterize

META = {"snapshot": "snap-1", "content_hash": "c0ffee", "created_at": "2026-01-02T03:04:05+00:00"}
CC0 = Path("/work/shared/data/nails-cc0")
ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- builders

def convex_polygon(rng, cx, cy, rx, ry, n):
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
    return [[round(cx + rx * math.cos(a), 2), round(cy + ry * math.sin(a), 2)] for a in angles]


def random_geometry(rng, width, height, max_nails=5):
    nails = []
    for _ in range(rng.randint(0, max_nails)):
        rx, ry = rng.uniform(4, 12), rng.uniform(4, 12)
        cx, cy = rng.uniform(rx + 1, width - rx - 1), rng.uniform(ry + 1, height - ry - 1)
        polygon = convex_polygon(rng, cx, cy, rx, ry, rng.randint(3, 12))
        finger = rng.choice([None, *range(1, 11)])
        base = tip = None
        if rng.random() < 0.6:
            a = rng.uniform(0, 2 * math.pi)
            base = [round(cx - 1.5 * math.cos(a), 2), round(cy - 1.5 * math.sin(a), 2)]
            tip = [round(cx + 1.5 * math.cos(a), 2), round(cy + 1.5 * math.sin(a), 2)]
        nail = {"polygon": polygon, "finger": finger, "base": base, "tip": tip}
        if rng.random() < 0.5:
            nail = {"id": f"n{rng.randint(0, 10 ** 6)}", **nail}
        nails.append(nail)
    ignore = []
    if rng.random() < 0.5:
        x, y = rng.uniform(0, width - 10), rng.uniform(0, height - 10)
        ignore.append([[round(x, 2), round(y, 2)], [round(x + 9, 2), round(y, 2)], [round(x + 9, 2), round(y + 7.5, 2)]])
    geometry = {"nails": nails, "ignore": ignore}
    report = validate_geometry(geometry, width, height)
    if not report.ok:  # random convex polygons can come out too thin; try again
        return random_geometry(rng, width, height, max_nails)
    return normalize_geometry(geometry)


def write_image(path, width, height, seed=0, fmt=None):
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, fmt)
    return str(path)


def make_records(folder, n, seed=1, sizes=((96, 72), (80, 100), (120, 64))):
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        width, height = sizes[i % len(sizes)]
        ext = ".png" if i % 4 == 3 else ".jpg"
        source = write_image(folder / f"src{i}{ext}", width, height, seed=i)
        records.append(ExportRecord(
            image_id=100 + i, file_name=f"{100 + i:06d}{ext}", source_path=source, width=width, height=height,
            participant=f"p{i % 5}", split=("train", "train", "val", "test")[i % 4],
            geometry=random_geometry(rng, width, height), sha256=f"{i:064x}"))
    return records


def by_name(dataset):
    return {image.file_name: image for image in dataset.images}


def assert_same_geometry(actual, expected, tol=1e-6):
    a, e = normalize_geometry(actual), normalize_geometry(expected)
    assert len(a["nails"]) == len(e["nails"])
    for got, want in zip(a["nails"], e["nails"]):
        assert got.get("id") == want.get("id")
        assert got["finger"] == want["finger"]
        assert np.allclose(got["polygon"], want["polygon"], atol=tol)
        for key in ("base", "tip"):
            assert (got[key] is None) == (want[key] is None)
            if want[key] is not None:
                assert np.allclose(got[key], want[key], atol=tol)
    assert len(a["ignore"]) == len(e["ignore"])
    for got, want in zip(a["ignore"], e["ignore"]):
        assert np.allclose(got, want, atol=tol)


def make_zip(path, members):
    """members: (name_or_ZipInfo, bytes)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


# ---------------------------------------------------------------- registry, label map, package

def test_registry_lists_formats_and_rejects_unknown_names():
    assert set(EXPORTERS) == {"coco", "cvat", "labelme", "masks", "yolo"}
    assert set(IMPORTERS) == {"coco", "cvat", "labelme", "masks", "yolo"}
    assert get_exporter("coco").ext == "zip" and get_exporter("masks").name == "masks"
    with pytest.raises(FormatError, match=r"unknown export format 'voc'; known: coco, cvat, labelme, masks, yolo"):
        get_exporter("voc")
    with pytest.raises(FormatError, match=r"known: coco, cvat, labelme, masks, yolo"):
        get_importer("voc")
    assert issubclass(FormatError, ValueError)


def test_label_map_normalises_and_covers_aliases():
    assert normalize_label("  Left - Thumb ") == "left_thumb"
    lm = prepare_label_map(None)
    cases = {"nail": None, "Fingernail": None, "left_thumb": 1, "left thumb": 1, "L1": 1, "l_thumb": 1,
             "Left-Index": 2, "left_pinky": 5, "R1": 6, "right_thumb": 6, "right little": 10, "thumb_right": 6,
             "finger_7": 7}
    for label, finger in cases.items():
        assert resolve_label(label, lm) == ("nail", finger), label
    assert resolve_label("ignore", lm) == ("ignore", None)
    assert resolve_label("hand", lm) == ("unknown", None)
    for k, name in FINGER_NAMES.items():  # every exporter's own category name maps back
        assert DEFAULT_LABEL_MAP[name.replace(" ", "_")] == k
    custom = prepare_label_map({"Nagel": None, "Daumen Links": 1})
    assert resolve_label("nagel", custom) == ("nail", None) and resolve_label("daumen-links", custom) == ("nail", 1)
    assert resolve_label("nail", custom) == ("unknown", None)  # a given map replaces the default
    with pytest.raises(FormatError):
        prepare_label_map({"x": 11})
    with pytest.raises(FormatError):
        prepare_label_map({"x": True})


def test_package_never_imports_django():
    code = ("import sys, dataset.formats, dataset.formats.coco, dataset.formats.masks; "
            "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# ---------------------------------------------------------------- targets

def test_zip_target_compression_and_unseekable_stream():
    class Unseekable(io.RawIOBase):
        def __init__(self):
            self.buffer = io.BytesIO()

        def writable(self):
            return True

        def write(self, data):
            return self.buffer.write(data)

    stream = Unseekable()
    with ZipTarget(stream) as target:
        target.write_text("a/b.json", "{}")
        target.write_bytes("x.png", b"png")
        target.write_bytes("x.npy", b"\0" * 1000)
        with target.open("y.jpg") as out:
            out.write(b"jpg")
        with pytest.raises(FormatError):
            target.write_text("a/b.json", "again")
        for bad in ("../x", "/abs", "a//b", "a/./b", "a\\b"):
            with pytest.raises(FormatError):
                target.write_text(bad, "x")
    with zipfile.ZipFile(io.BytesIO(stream.buffer.getvalue())) as zf:
        assert zf.testzip() is None
        kinds = {i.filename: i.compress_type for i in zf.infolist()}
        assert kinds == {"a/b.json": zipfile.ZIP_DEFLATED, "x.png": zipfile.ZIP_STORED,
                         "x.npy": zipfile.ZIP_DEFLATED, "y.jpg": zipfile.ZIP_STORED}
        assert zf.read("y.jpg") == b"jpg"


def test_zip_target_removes_a_partial_file_on_error(tmp_path):
    path = tmp_path / "out.zip"
    with pytest.raises(RuntimeError):
        with ZipTarget(path) as target:
            target.write_text("a.txt", "x")
            raise RuntimeError("boom")
    assert not path.exists()
    assert isinstance(open_target(tmp_path / "o.ZIP"), ZipTarget)
    assert isinstance(open_target(tmp_path / "folder"), FolderTarget)


@pytest.mark.parametrize("fmt", ["coco", "masks", "yolo"])
def test_exporters_consume_records_lazily(tmp_path, fmt):
    records = make_records(tmp_path / "src", 12)
    state = {"yielded": 0, "copied": 0}

    def generate():
        for record in records:
            state["yielded"] += 1
            yield record

    class Watching(ZipTarget):
        def copy_file(self, name, source_path):
            state["copied"] += 1
            assert state["yielded"] == state["copied"], "records were read ahead"
            super().copy_file(name, source_path)

    with Watching(tmp_path / "out.zip") as target:
        summary = get_exporter(fmt).export(generate(), target, META)
    assert state == {"yielded": 12, "copied": 12} and summary["images"] == 12


def test_export_memory_stays_flat(tmp_path):
    source = write_image(tmp_path / "img.jpg", 200, 150)
    rng = random.Random(5)
    geometry = random_geometry(rng, 200, 150, max_nails=8)

    def records(n):
        for i in range(n):
            yield ExportRecord(i, f"{i:06d}.jpg", source, 200, 150, "p", ("train", "val", "test")[i % 3], geometry, "x")

    peaks = {}
    for fmt in ("coco", "masks"):
        for n in (40, 240):
            tracemalloc.start()
            with ZipTarget(tmp_path / f"{fmt}{n}.zip") as target:
                get_exporter(fmt).export(records(n), target, META)
            peaks[fmt, n] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        # only per image bookkeeping may grow (the zip's central directory, names: a few KB per image);
        # keeping one image's rasters (~0.5 MB at 200x150) per record would add ~100 MB here
        assert peaks[fmt, 240] < peaks[fmt, 40] + 2 * 1024 * 1024, peaks


def test_bad_records_and_meta_are_refused(tmp_path):
    record = make_records(tmp_path, 1)[0]
    exporter = get_exporter("coco")
    with pytest.raises(FormatError, match="meta is missing"):
        exporter.export([record], FolderTarget(tmp_path / "a"), {"snapshot": "x"})
    for change in ({"split": "holdout"}, {"file_name": "../x.jpg"}, {"width": 0}):
        bad = ExportRecord(**{**record.__dict__, **change})
        with pytest.raises(FormatError):
            exporter.export([bad], FolderTarget(tmp_path / "b"), META)
    with pytest.raises(FormatError, match="used twice"):
        exporter.export([record, record], FolderTarget(tmp_path / "c"), META)
    gone = ExportRecord(**{**record.__dict__, "source_path": str(tmp_path / "missing.jpg")})
    with pytest.raises(FormatError, match="cannot read"):
        exporter.export([gone], FolderTarget(tmp_path / "d"), META)


# ---------------------------------------------------------------- COCO

def test_coco_round_trip_folder_and_zip(tmp_path):
    records = make_records(tmp_path / "src", 16, seed=3)
    get_exporter("coco").export(iter(records), FolderTarget(tmp_path / "folder"), META)
    with ZipTarget(tmp_path / "coco.zip") as target:
        summary = get_exporter("coco").export((r for r in records), target, META)
    assert summary["images"] == 16 and summary["splits"] == {"train": 8, "val": 4, "test": 4}
    assert sorted(os.listdir(tmp_path / "folder" / "annotations")) == [
        "instances_test.json", "instances_train.json", "instances_val.json"]

    from_folder = get_importer("coco").parse(tmp_path / "folder")
    from_zip = get_importer("coco").parse(tmp_path / "coco.zip", extract_dir=tmp_path / "unzipped")
    for dataset in (from_folder, from_zip):
        assert dataset.unknown_labels == {} and dataset.warnings == []
        images = by_name(dataset)
        assert set(images) == {r.file_name for r in records}
        for record in records:
            image = images[record.file_name]
            assert (image.width, image.height) == (record.width, record.height)
            assert_same_geometry(image.geometry, record.geometry)
            assert image.image_path and Path(image.image_path).read_bytes() == Path(record.source_path).read_bytes()
    # without extract_dir the temporary folder is gone, so no image paths
    assert all(i.image_path is None for i in get_importer("coco").parse(tmp_path / "coco.zip").images)
    # a single split file imports on its own
    one = get_importer("coco").parse(tmp_path / "folder" / "annotations" / "instances_val.json")
    assert {i.file_name for i in one.images} == {r.file_name for r in records if r.split == "val"}


def test_coco_json_content(tmp_path):
    records = make_records(tmp_path / "src", 8, seed=4)
    get_exporter("coco").export(records, FolderTarget(tmp_path / "out"), META)
    data = json.loads((tmp_path / "out/annotations/instances_train.json").read_text())
    assert data["info"]["snapshot"] == "snap-1" and data["info"]["content_hash"] == "c0ffee"
    assert data["info"]["split"] == "train"
    cats = {c["id"]: c for c in data["categories"]}
    assert sorted(cats) == list(range(1, 12))
    assert cats[1]["name"] == "left_thumb" and cats[10]["name"] == "right_little" and cats[11]["name"] == "nail"
    assert all(c["keypoints"] == ["base", "tip"] and c["skeleton"] == [[1, 2]] and c["supercategory"] == "nail"
               for c in cats.values())
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
    train = [r for r in records if r.split == "train"]
    assert {i["file_name"] for i in data["images"]} == {r.file_name for r in train}
    for ann in data["annotations"]:
        xs, ys = ann["segmentation"][0][0::2], ann["segmentation"][0][1::2]
        assert ann["bbox"] == pytest.approx([min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)])
        if ann["iscrowd"]:
            assert ann["attributes"] == {"ignore": True} and ann["category_id"] == UNKNOWN_CATEGORY_ID
        elif ann["num_keypoints"] == 0:
            assert ann["keypoints"] == [0] * 6
        else:
            assert ann["keypoints"][2::3] == [2, 2] and ann["num_keypoints"] == 2
    for split in ("train", "val", "test"):
        for r in records:
            if r.split == split:
                assert (tmp_path / f"out/images/{split}/{r.file_name}").is_file()


def test_pycocotools_loads_the_export(tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    records = make_records(tmp_path / "src", 12, seed=6)
    with ZipTarget(tmp_path / "coco.zip") as target:
        get_exporter("coco").export(records, target, META)
    safe_extract(tmp_path / "coco.zip", tmp_path / "x")
    checked = 0
    for split in ("train", "val", "test"):
        coco = COCO(str(tmp_path / f"x/annotations/instances_{split}.json"))
        assert sorted(coco.getCatIds()) == list(range(1, 12))
        for ann in coco.loadAnns(coco.getAnnIds()):
            image = coco.loadImgs(ann["image_id"])[0]
            mask = coco.annToMask(ann)
            assert mask.shape == (image["height"], image["width"])
            assert abs(int(mask.sum()) - ann["area"]) <= 0.25 * ann["area"] + 10
            checked += 1
    assert checked == sum(len(r.geometry["nails"]) + len(r.geometry["ignore"]) for r in records) > 0


@st.composite
def coco_geometries(draw):
    width, height = draw(st.integers(40, 300)), draw(st.integers(40, 300))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return width, height, random_geometry(random.Random(seed), width, height, max_nails=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(coco_geometries())
def test_coco_round_trip_property(tmp_path, case):
    width, height, geometry = case
    source = tmp_path / "img.png"
    if not source.exists():
        write_image(source, 8, 8)
    record = ExportRecord(1, "a.png", str(source), width, height, "p", "train", geometry, "h")
    out = tmp_path / "out.zip"
    with ZipTarget(out) as target:
        get_exporter("coco").export([record], target, META)
    [image] = get_importer("coco").parse(out).images
    assert_same_geometry(image.geometry, geometry)
    assert validate_geometry(image.geometry, width, height).ok


def coco_file(tmp_path, annotations, categories=None, name="c.json"):
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
            "annotations": annotations,
            "categories": categories or [{"id": 1, "name": "nail", "keypoints": ["base", "tip"]}]}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_coco_import_details(tmp_path):
    square = [10, 10, 30, 10, 30, 30, 10, 30]
    small = [50, 50, 52, 50, 52, 52]
    cats = [{"id": 1, "name": "Left Thumb", "keypoints": ["tip", "base"]}, {"id": 2, "name": "hand"},
            {"id": 3, "name": "nail"}]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [small, square], "iscrowd": 0,
         "keypoints": [20, 12, 2, 20, 28, 1], "attributes": {"nail_id": "abc"}},      # tip first in this category
        {"id": 2, "image_id": 1, "category_id": 3, "segmentation": [[40, 10, 60, 10, 60, 30]], "iscrowd": 0,
         "keypoints": [0, 0, 0, 50, 15, 2]},                                          # base invisible -> no landmarks
        {"id": 3, "image_id": 1, "category_id": 2, "segmentation": [square], "iscrowd": 0},   # unknown label
        {"id": 4, "image_id": 1, "category_id": 3, "segmentation": [[70, 60, 90, 60, 90, 75]], "iscrowd": 1},
        {"id": 5, "image_id": 9, "category_id": 3, "segmentation": [square]},         # no such image
        {"id": 6, "image_id": 1, "category_id": 42, "segmentation": [square]},        # no such category
    ]
    dataset = get_importer("coco").parse(coco_file(tmp_path, anns, cats))
    [image] = dataset.images
    assert dataset.unknown_labels == {"hand": 1, "category_id 42": 1}
    assert image.unknown_labels == {"hand", "category_id 42"}
    thumb, other = image.geometry["nails"]
    assert thumb == {"id": "abc", "polygon": [[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]],
                     "finger": 1, "base": [20.0, 28.0], "tip": [20.0, 12.0]}
    assert other["finger"] is None and other["base"] is None and other["tip"] is None
    assert image.geometry["ignore"] == [[[70.0, 60.0], [90.0, 60.0], [90.0, 75.0]]]
    text = "\n".join(dataset.warnings)
    assert "2 polygons; the largest was kept" in text and "only the tip keypoint is visible" in text
    assert "refers to no listed image" in text
    with pytest.raises(FormatError):
        get_importer("coco").parse(coco_file(tmp_path, [], name="x.json").parent / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FormatError, match="not readable JSON"):
        get_importer("coco").parse(tmp_path / "bad.json")
    (tmp_path / "labelme.json").write_text(json.dumps({"shapes": []}))
    with pytest.raises(FormatError, match="not a COCO"):
        get_importer("coco").parse(tmp_path / "labelme.json")


def test_coco_keypoints_without_names_and_custom_label_map(tmp_path):
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]],
             "keypoints": [20, 28, 2, 20, 12, 2]}]
    path = coco_file(tmp_path, anns, [{"id": 1, "name": "Nagel rechts 2"}])
    dataset = get_importer("coco").parse(path, label_map={"nagel rechts 2": 7})
    nail = dataset.images[0].geometry["nails"][0]
    assert nail["finger"] == 7 and nail["base"] == [20.0, 28.0] and nail["tip"] == [20.0, 12.0]
    assert get_importer("coco").parse(path).unknown_labels == {"Nagel rechts 2": 1}


def rle_string(mask):
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def test_rle_decoder_matches_pycocotools():
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(0)
    for shape in ((1, 1), (7, 5), (40, 33), (300, 200)):
        mask = (rng.random(shape) < rng.random()).astype(np.uint8)
        rle = rle_string(mask)
        assert np.array_equal(rle_decode(rle), mask)
    with pytest.raises(FormatError):
        rle_decode({"size": [2, 2], "counts": [1, 1]})
    assert rle_counts_from_string("") == []


def test_coco_rle_segmentations_become_polygons(tmp_path):
    mask = np.zeros((80, 100), np.uint8)
    mask[10:30, 20:50] = 1
    crowd = np.zeros((80, 100), np.uint8)
    crowd[50:70, 60:90] = 1
    columns = crowd.T.reshape(-1)  # uncompressed RLE: column-major runs starting with 0s
    changes = np.flatnonzero(np.diff(columns)) + 1
    counts = np.diff(np.concatenate([[0], changes, [columns.size]])).tolist()
    anns = [{"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": {"size": [80, 100], "counts": counts}}]
    try:
        anns.append({"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": rle_string(mask)})
    except ImportError:
        pass
    dataset = get_importer("coco").parse(coco_file(tmp_path, anns))
    [image] = dataset.images
    assert image.geometry["ignore"] == [[[60.5, 50.5], [60.5, 69.5], [89.5, 69.5], [89.5, 50.5]]]
    if len(anns) == 2:
        assert image.geometry["nails"][0]["polygon"] == [[20.5, 10.5], [20.5, 29.5], [49.5, 29.5], [49.5, 10.5]]
        assert any("RLE mask converted" in w for w in dataset.warnings)


def test_coco_import_repairs_self_touching_polygons(tmp_path):
    spike = [10, 10, 30, 10, 30, 30, 20, 30, 20, 40, 20, 30, 10, 30]  # a spike out of the bottom edge
    dataset = get_importer("coco").parse(coco_file(tmp_path, [{"id": 1, "image_id": 1, "category_id": 1,
                                                               "segmentation": [spike]}]))
    image = dataset.images[0]
    assert validate_geometry(image.geometry, 100, 80).ok
    assert abs(validate_area(image.geometry["nails"][0]["polygon"]) - 400) < 1e-9
    assert any("repaired" in w for w in dataset.warnings)
    raw = get_importer("coco").parse(tmp_path / "c.json", repair=False).images[0]
    assert [e.rule for e in validate_geometry(raw.geometry, 100, 80).errors] == ["self_intersecting"]


def validate_area(points):
    from shapely.geometry import Polygon
    return Polygon(points).area


@pytest.mark.skipif(not CC0.exists(), reason="shared nails-cc0 data set not present")
def test_shared_nails_cc0_imports(tmp_path):
    dataset = get_importer("coco").parse(CC0 / "annotations.coco.json")
    assert len(dataset.images) == 40
    nails = [n for image in dataset.images for n in image.geometry["nails"]]
    assert len(nails) == 227
    assert all(n["finger"] is None and n["base"] is None and n["tip"] is None for n in nails)
    assert dataset.unknown_labels == {}
    assert all(w.endswith("px)") and "repaired" in w for w in dataset.warnings)  # 3 self-touching traces
    for image in dataset.images:
        assert validate_geometry(image.geometry, image.width, image.height).ok, image.file_name
        assert image.image_path and Path(image.image_path).is_file()
        with Image.open(image.image_path) as img:
            assert img.size == (image.width, image.height)


@pytest.mark.skipif(not CC0.exists(), reason="shared nails-cc0 data set not present")
def test_shared_nails_cc0_exports_in_every_format(tmp_path):
    dataset = get_importer("coco").parse(CC0 / "annotations.coco.json")
    records = [ExportRecord(i, f"{i:06d}{Path(im.file_name).suffix}", im.image_path, im.width, im.height,
                            f"p{i}", ("train", "train", "val", "test")[i % 4], im.geometry, "")
               for i, im in enumerate(dataset.images)]
    for fmt in ("coco", "masks", "yolo"):
        with ZipTarget(tmp_path / f"{fmt}.zip") as target:
            assert get_exporter(fmt).export(iter(records), target, META)["images"] == 40
    back = by_name(get_importer("coco").parse(tmp_path / "coco.zip"))
    for record in records:
        assert_same_geometry(back[record.file_name].geometry, record.geometry)
    with MasksReader(tmp_path / "masks.zip") as reader:
        assert len(reader.entries) == 40
        entry = reader.entries[0]
        sample = reader.load(entry)
        record = records[entry["image_id"]]
        assert np.array_equal(sample["foreground"], rasterize(record.geometry, record.width, record.height).foreground)
        assert sample["image"].shape == (record.height, record.width, 3)


# ---------------------------------------------------------------- masks

def test_masks_export_matches_rasterize(tmp_path):
    records = make_records(tmp_path / "src", 10, seed=8)
    get_exporter("masks").export(iter(records), FolderTarget(tmp_path / "folder"), META)
    with ZipTarget(tmp_path / "masks.zip") as target:
        get_exporter("masks").export(iter(records), target, META)
    manifest = read_masks_manifest(tmp_path / "folder")
    assert manifest == read_masks_manifest(tmp_path / "masks.zip")
    assert manifest["snapshot"] == "snap-1" and manifest["content_hash"] == "c0ffee"
    assert manifest["label_map"]["0"] == "background" and manifest["label_map"]["255"] == "unknown"
    assert manifest["label_map"]["1"] == "left_thumb" and manifest["label_map"]["10"] == "right_little"
    assert manifest["splits"] == {"train": 6, "val": 2, "test": 2}
    entries = {e["image_id"]: e for e in manifest["images"]}
    assert len(entries) == 10
    with MasksReader(tmp_path / "masks.zip") as zipped:
        for record in records:
            entry = entries[record.image_id]
            nails = record.geometry["nails"]
            assert entry["split"] == record.split and entry["participant"] == record.participant
            assert (entry["width"], entry["height"], entry["nails"]) == (record.width, record.height, len(nails))
            assert entry["has_classes"] == any(n["finger"] is not None for n in nails)
            assert entry["has_landmarks"] == any(n["base"] is not None for n in nails)
            assert entry["classes"] == f"{record.split}/classes/{Path(record.file_name).stem}.png"
            expected = rasterize(record.geometry, record.width, record.height)
            for sample in (load_masks_sample(tmp_path / "folder", entry), zipped.load(entry)):
                for key in ("classes", "foreground", "field", "field_mask", "ignore", "instances"):
                    want = getattr(expected, "instance" if key == "instances" else key)
                    assert sample[key].dtype == want.dtype, key
                    assert np.array_equal(sample[key], want), key
                with Image.open(record.source_path) as img:
                    assert np.array_equal(sample["image"], np.asarray(img.convert("RGB")))
    # the PNGs on disk use 0/255 for foreground and ignore, the class values as they are
    entry = entries[records[0].image_id]
    with Image.open(tmp_path / "folder" / entry["foreground"]) as img:
        assert img.mode == "L" and set(np.unique(np.asarray(img))) <= {0, 255}
    assert "field" not in entry and len(entry["field_vectors"]) == len(records[0].geometry["nails"])


def test_masks_unknown_class_and_reader_errors(tmp_path):
    source = write_image(tmp_path / "a.jpg", 40, 30)
    geometry = {"nails": [{"polygon": [[2, 2], [12, 2], [12, 12], [2, 12]], "finger": None, "base": None, "tip": None},
                          {"polygon": [[20, 2], [30, 2], [30, 12], [20, 12]], "finger": 4, "base": [25, 11],
                           "tip": [25, 3]}],
              "ignore": [[[0, 20], [10, 20], [10, 28]]]}
    record = ExportRecord(7, "a.jpg", source, 40, 30, "p", "val", geometry, "h")
    get_exporter("masks").export([record], FolderTarget(tmp_path / "out"), META)
    [entry] = read_masks_manifest(tmp_path / "out")["images"]
    sample = load_masks_sample(tmp_path / "out", entry, image=False)
    assert "image" not in sample
    assert set(np.unique(sample["classes"])) == {0, 4, UNKNOWN_CLASS}
    assert np.allclose(sample["field"][5, 25], [0, -1]) and sample["field_mask"][5, 5] == 0
    assert sample["ignore"].sum() > 0
    with pytest.raises(FormatError):
        read_masks_manifest(tmp_path / "nowhere")
    (tmp_path / "out" / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(FormatError, match="not a NailSet masks manifest"):
        read_masks_manifest(tmp_path / "out")
    with pytest.raises(FormatError, match="bad path"):
        load_masks_sample(tmp_path / "out", {**entry, "classes": "../../etc/passwd"})
    twins = [ExportRecord(1, "x.jpg", source, 40, 30, "p", "train", geometry, ""),
             ExportRecord(2, "x.png", source, 40, 30, "p", "train", geometry, "")]
    with pytest.raises(FormatError, match="stem"):
        get_exporter("masks").export(twins, FolderTarget(tmp_path / "twins"), META)


def test_masks_with_more_than_255_nails_use_16_bit_instances(tmp_path):
    source = write_image(tmp_path / "a.png", 170, 170)
    nails = [{"polygon": [[x * 10 + 1, y * 10 + 1], [x * 10 + 9, y * 10 + 1], [x * 10 + 9, y * 10 + 9]],
              "finger": None, "base": None if (x + y) % 3 else [x * 10 + 7, y * 10 + 2],
              "tip": None if (x + y) % 3 else [x * 10 + 8.5, y * 10 + 7]}
             for y in range(17) for x in range(17)]
    geometry = normalize_geometry({"nails": nails, "ignore": []})
    assert validate_geometry(geometry, 170, 170).ok and len(nails) == 289
    record = ExportRecord(1, "a.png", source, 170, 170, "p", "test", geometry, "")
    get_exporter("masks").export([record], FolderTarget(tmp_path / "out"), META)
    [entry] = read_masks_manifest(tmp_path / "out")["images"]
    with Image.open(tmp_path / "out" / entry["instances"]) as img:
        assert img.mode.startswith("I")
    sample = load_masks_sample(tmp_path / "out", entry)
    expected = rasterize(geometry, 170, 170)
    assert sample["instances"].max() == 289
    assert np.array_equal(sample["instances"], expected.instance)
    assert np.array_equal(sample["field"], expected.field) and np.array_equal(sample["field_mask"], expected.field_mask)
    assert expected.field_mask.any()


# ---------------------------------------------------------------- YOLO

def test_yolo_labels_and_data_yaml(tmp_path):
    yaml = pytest.importorskip("yaml")
    records = make_records(tmp_path / "src", 8, seed=9)
    summary = get_exporter("yolo").export(records, FolderTarget(tmp_path / "out"), META)
    assert summary["nails"] == sum(len(r.geometry["nails"]) for r in records)
    data = yaml.safe_load((tmp_path / "out/data.yaml").read_text())
    assert data["path"] == str(tmp_path / "out")
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val", "images/test")
    assert data["nc"] == 11 and data["names"][0] == "left_thumb" and data["names"][9] == "right_little"
    assert data["names"][10] == "nail"
    for record in records:
        stem = Path(record.file_name).stem
        assert (tmp_path / f"out/images/{record.split}/{record.file_name}").is_file()
        lines = (tmp_path / f"out/labels/{record.split}/{stem}.txt").read_text().splitlines()
        assert len(lines) == len(record.geometry["nails"])
        for line, nail in zip(lines, record.geometry["nails"]):
            values = line.split()
            assert int(values[0]) == (nail["finger"] - 1 if nail["finger"] else 10)
            coords = np.array(values[1:], float).reshape(-1, 2)
            assert ((coords >= 0) & (coords <= 1)).all()
            assert np.allclose(coords * [record.width, record.height], nail["polygon"], atol=1e-6 * 200)
    with ZipTarget(tmp_path / "yolo.zip") as target:
        get_exporter("yolo").export(records, target, META)
    with zipfile.ZipFile(tmp_path / "yolo.zip") as zf:
        zipped = yaml.safe_load(zf.read("data.yaml"))
    assert "path" not in zipped and zipped["names"] == data["names"]


# ---------------------------------------------------------------- LabelMe

def labelme_doc(shapes, image="photo.jpg", width=100, height=80):
    return {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image, "imageData": None,
            "imageHeight": height, "imageWidth": width}


def poly(label, x0, y0, x1, y1, group=None):
    return {"label": label, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "group_id": group,
            "shape_type": "polygon", "flags": {}}


def point(label, x, y, group=None):
    return {"label": label, "points": [[x, y]], "group_id": group, "shape_type": "point", "flags": {}}


LABELME_SHAPES = [
    poly("Left Thumb", 10, 10, 30, 30), point("base", 20, 28), point("tip", 20, 12),
    poly("R2", 50, 10, 70, 30), point("r2_base", 60, 31.5), point("tip", 60, 12),   # base 1.5 px outside: nearest
    poly("nail", 40, 40, 60, 60), point("base", 50, 58),                           # a base without a tip
    poly("hand", 0, 0, 99, 79), poly("ignore", 80, 60, 95, 75),
    point("tip", 200, 200), point("foo", 5, 5),
    {"label": "nail", "points": [[5, 5], [8, 8]], "shape_type": "circle"},
    {"label": "left_ring", "points": [[70, 40], [90, 55]], "shape_type": "rectangle"},
]


def test_labelme_import(tmp_path):
    path = tmp_path / "photo.json"
    path.write_text(json.dumps(labelme_doc(LABELME_SHAPES)))
    write_image(tmp_path / "photo.jpg", 100, 80)
    dataset = get_importer("labelme").parse(path)
    [image] = dataset.images
    assert (image.file_name, image.width, image.height) == ("photo.jpg", 100, 80)
    assert image.image_path == str(tmp_path / "photo.jpg")
    thumb, index, unknown, ring = image.geometry["nails"]
    assert (thumb["finger"], thumb["base"], thumb["tip"]) == (1, [20.0, 28.0], [20.0, 12.0])
    assert (index["finger"], index["base"], index["tip"]) == (7, [60.0, 31.5], [60.0, 12.0])
    assert (unknown["finger"], unknown["base"], unknown["tip"]) == (None, None, None)
    assert ring["finger"] == 4 and ring["polygon"] == [[70.0, 40.0], [90.0, 40.0], [90.0, 55.0], [70.0, 55.0]]
    assert image.geometry["ignore"] == [[[80.0, 60.0], [95.0, 60.0], [95.0, 75.0], [80.0, 75.0]]]
    assert dataset.unknown_labels == {"hand": 1, "foo": 1} and image.unknown_labels == {"hand", "foo"}
    text = "\n".join(dataset.warnings)
    for expected in ("has no tip; its base was dropped", "tip at (200, 200) is not inside any nail",
                     "'circle' is not supported", "rectangle taken as a 4-vertex polygon"):
        assert expected in text
    assert validate_geometry(image.geometry, 100, 80).ok


def test_labelme_groups_decide_overlapping_nails(tmp_path):
    shapes = [poly("nail", 10, 10, 40, 40, group=1), poly("nail", 20, 20, 50, 50, group=2),
              point("base", 30, 30, group=1), point("tip", 35, 35, group=1),
              point("base", 31, 31, group=2), point("tip", 36, 36, group=2),
              point("base", 25, 25), point("tip", 26, 26)]   # ungrouped: the smaller containing nail...
    path = tmp_path / "g.json"
    path.write_text(json.dumps(labelme_doc(shapes)))
    dataset = get_importer("labelme").parse(path)
    first, second = dataset.images[0].geometry["nails"]
    assert (first["base"], first["tip"]) == ([30.0, 30.0], [35.0, 35.0])
    assert (second["base"], second["tip"]) == ([31.0, 31.0], [36.0, 36.0])
    assert sum("already has a" in w for w in dataset.warnings) == 2  # ...which already has both


def test_labelme_folder_and_zip(tmp_path):
    folder = tmp_path / "lm"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps(labelme_doc([poly("L1", 10, 10, 30, 30)], image="a.jpg")))
    (folder / "sub" / "b.json").write_text(json.dumps(labelme_doc([poly("r5", 10, 10, 30, 30)], image="..\\imgs\\b.png")))
    (folder / "notes.json").write_text(json.dumps({"hello": 1}))
    (folder / "._a.json").write_bytes(b"\0\x05\x16\x07 AppleDouble")
    dataset = get_importer("labelme").parse(folder)
    images = by_name(dataset)
    assert images["a.jpg"].geometry["nails"][0]["finger"] == 1
    assert images["b.png"].geometry["nails"][0]["finger"] == 10
    assert any("notes.json is not a LabelMe file" in w for w in dataset.warnings)
    archive = tmp_path / "lm.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.rglob("*.json"):
            zf.write(path, path.relative_to(folder).as_posix())
    assert by_name(get_importer("labelme").parse(archive)).keys() == images.keys()
    with pytest.raises(FormatError, match="not a LabelMe file"):
        get_importer("labelme").parse(folder / "notes.json")


# ---------------------------------------------------------------- CVAT

CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><name>nails</name></task></meta>
  <image id="0" name="frames/one.jpg" width="100" height="80">
    <polygon label="left_index" source="manual" occluded="0" points="10.0,10.0;30.0,10.0;30.0,30.0;10.0,30.0" z_order="0">
    </polygon>
    <points label="base" source="manual" occluded="0" points="20.00,28.00" z_order="0"></points>
    <points label="tip" source="manual" occluded="0" points="20.00,12.00" z_order="0"></points>
    <polygon label="nail" points="50,10;70,10;70,30;50,30">
      <attribute name="finger">Right Ring</attribute>
    </polygon>
    <polygon label="ignore" points="80,60;95,60;95,75"></polygon>
    <polygon label="hand" points="0,0;99,0;99,79"></polygon>
    <box label="nail" xtl="40" ytl="40" xbr="60" ybr="60"></box>
    <points label="tip" points="60,12;90,75"></points>
    <polyline label="nail" points="1,1;2,2"></polyline>
  </image>
  <image id="1" name="two.png" width="64" height="48">
  </image>
</annotations>
"""


def test_cvat_import(tmp_path):
    path = tmp_path / "annotations.xml"
    path.write_text(CVAT_XML)
    dataset = get_importer("cvat").parse(path)
    images = by_name(dataset)
    assert set(images) == {"one.jpg", "two.png"}
    one = images["one.jpg"]
    assert (one.width, one.height) == (100, 80)
    index, ring, box = one.geometry["nails"]
    assert (index["finger"], index["base"], index["tip"]) == (2, [20.0, 28.0], [20.0, 12.0])
    assert ring["finger"] == 9 and ring["tip"] is None  # its tip had no base: dropped
    assert box["finger"] is None and box["polygon"] == [[40.0, 40.0], [60.0, 40.0], [60.0, 60.0], [40.0, 60.0]]
    assert one.geometry["ignore"] == [[[80.0, 60.0], [95.0, 60.0], [95.0, 75.0]]]
    assert images["two.png"].geometry == {"nails": [], "ignore": []}
    assert dataset.unknown_labels == {"hand": 1}
    text = "\n".join(dataset.warnings)
    for expected in ("tip at (90, 75) is not inside any nail", "has no base; its tip was dropped",
                     "<polyline> shapes are not supported", "box taken as a 4-vertex polygon"):
        assert expected in text
    assert validate_geometry(one.geometry, 100, 80).ok
    # the same from a zip holding a folder
    archive = make_zip(tmp_path / "cvat.zip", [("task/annotations.xml", CVAT_XML), ("task/images/two.png", b"")])
    assert by_name(get_importer("cvat").parse(archive)).keys() == images.keys()


def test_cvat_refuses_entities_and_other_xml(tmp_path):
    bomb = ('<?xml version="1.0"?><!DOCTYPE annotations [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><annotations>&b;</annotations>')
    (tmp_path / "bomb.xml").write_text(bomb)
    with pytest.raises(FormatError, match="DTD"):
        get_importer("cvat").parse(tmp_path / "bomb.xml")
    external = '<?xml version="1.0"?><!DOCTYPE a SYSTEM "file:///etc/passwd"><annotations></annotations>'
    (tmp_path / "ext.xml").write_text(external)
    with pytest.raises(FormatError, match="DTD"):
        get_importer("cvat").parse(tmp_path / "ext.xml")
    (tmp_path / "voc.xml").write_text("<annotation><object/></annotation>")
    with pytest.raises(FormatError, match="not a CVAT annotations file"):
        get_importer("cvat").parse(tmp_path / "voc.xml")
    (tmp_path / "broken.xml").write_text("<annotations><image>")
    with pytest.raises(FormatError, match="not well-formed"):
        get_importer("cvat").parse(tmp_path / "broken.xml")


# ---------------------------------------------------------------- safe_extract

def link_member(name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


@pytest.mark.parametrize("members, message", [
    ([("../evil.txt", b"x")], r"'\.\.'"),
    ([("ok/../../evil.txt", b"x")], r"'\.\.'"),
    ([("/tmp/evil.txt", b"x")], "absolute"),
    ([("C:/evil.txt", b"x")], "absolute"),
    ([("..\\evil.txt", b"x")], "backslash"),
    ([link_member("link", "/etc/passwd")], "symbolic link"),
    ([("a.txt", b"1"), ("a.txt", b"2")], "twice"),
])
def test_safe_extract_refuses_malicious_archives(tmp_path, members, message):
    archive = tmp_path / "evil.zip"
    with pytest.warns(UserWarning) if message == "twice" else _nothing():
        make_zip(archive, [("fine.txt", b"fine"), *members])
    target = tmp_path / "target"
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []  # nothing at all is written
    assert not (tmp_path / "evil.txt").exists()
    with pytest.raises(UnsafeArchiveError):
        get_importer("coco").parse(archive)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_safe_extract_refuses_zip_bombs_and_links_in_the_target(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.json", b"\0" * (20 << 20))
    with pytest.raises(UnsafeArchiveError, match="zip bomb"):
        safe_extract(bomb, tmp_path / "t1")
    with pytest.raises(UnsafeArchiveError, match="more than 1000 bytes"):
        safe_extract(bomb, tmp_path / "t2", max_total_size=1000, max_ratio=10 ** 9)
    with pytest.raises(UnsafeArchiveError, match="members"):
        safe_extract(make_zip(tmp_path / "many.zip", [(f"{i}.txt", b"") for i in range(5)]), tmp_path / "t3",
                     max_members=4)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "t4"
    target.mkdir()
    (target / "link").symlink_to(outside)
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        safe_extract(make_zip(tmp_path / "via-link.zip", [("link/x.txt", b"x")]), target)
    assert list(outside.iterdir()) == []
    with pytest.raises(FormatError, match="not a readable zip"):
        safe_extract(io.BytesIO(b"not a zip"), tmp_path / "t5")


def test_safe_extract_unpacks_a_good_archive(tmp_path):
    archive = make_zip(tmp_path / "good.zip", [("a/b/c.txt", b"hello"), ("a/d/", b""), ("./e.txt", b"e")])
    written = safe_extract(archive, tmp_path / "t")
    assert sorted(Path(p).relative_to(tmp_path / "t").as_posix() for p in written) == ["a/b/c.txt", "e.txt"]
    assert (tmp_path / "t/a/b/c.txt").read_bytes() == b"hello" and (tmp_path / "t/a/d").is_dir()
