"""Where imports find the pictures (issue #15): each tool's own layout, without --images.

LabelMe: ``imagePath`` relative to the JSON (``annotations/x.json`` -> ``../images/x.jpg``), then --images,
then the picture embedded in the JSON (``imageData``). CVAT for images 1.1: ``images/`` beside
annotations.xml with the image names as written (sub-folders included), then --images. A single annotation
file given as PATH works. Paths never leave the import folder, zip or --images folder
(tests/test_import_paths.py)."""
import base64
import hashlib
import json
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from curation.transfer import import_labels
from labeling.models import Annotation, Image, Upload
from tests.conftest import jpeg_bytes, synthetic_picture

SQUARE = [[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]


def photo(path: Path, color=(200, 120, 130), size=(80, 60)) -> bytes:
    data = jpeg_bytes(synthetic_picture(*size, color))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def labelme_json(path: Path, image_path, image_data: bytes | None = None, label="left_thumb", size=(80, 60)) -> Path:
    """A LabelMe 5.x file as the tool writes it (labelme/label_file.py: version, flags, shapes, imagePath,
    imageData base64 or null, imageHeight, imageWidth), with one nail and its base and tip in one group."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = {"label": label, "points": SQUARE, "group_id": 1, "description": "", "shape_type": "polygon", "flags": {}, "mask": None}
    points = [{"label": kind, "points": [point], "group_id": 1, "description": "", "shape_type": "point", "flags": {}, "mask": None}
              for kind, point in (("base", [20.0, 28.0]), ("tip", [20.0, 12.0]))]
    path.write_text(json.dumps({
        "version": "5.4.1", "flags": {}, "shapes": [shape, *points], "imagePath": image_path,
        "imageData": base64.b64encode(image_data).decode() if image_data is not None else None,
        "imageHeight": size[1], "imageWidth": size[0]}, indent=2))
    return path


def nail_of(image: Image) -> dict:
    [nail] = Annotation.objects.get(image=image).geometry["nails"]
    return nail


def test_labelme_images_beside_the_annotations_folder_without_images_option(db, tmp_path):
    """`labelme images/ --output annotations/` writes "imagePath": "../images/x.jpg": import the folder holding both."""
    project = tmp_path / "project"
    data = photo(project / "images" / "hand.jpg")
    labelme_json(project / "annotations" / "hand.json", "../images/hand.jpg")
    photo(project / "annotations" / "hand.jpg", (1, 2, 3))  # a different picture of the same name beside the JSON
    report = import_labels("labelme", str(project), default_participant="P1")
    assert report.failed_files == [] and report.labelled == 1
    upload = Upload.objects.get()
    assert upload.sha256 == sha(data) and upload.original_name == "hand.jpg"  # the path as written wins over the base name
    assert nail_of(Image.objects.get()) == {"polygon": SQUARE, "finger": 1, "base": [20.0, 28.0], "tip": [20.0, 12.0]}


def test_labelme_project_as_a_zip_and_the_annotations_folder_with_images_option(db, tmp_path):
    project = tmp_path / "project"
    photo(project / "images" / "a.jpg")
    photo(project / "images" / "b.jpg", (10, 200, 30))
    labelme_json(project / "annotations" / "a.json", "../images/a.jpg")
    labelme_json(project / "annotations" / "b.json", "..\\images\\b.jpg")  # as LabelMe writes it on Windows
    archive = tmp_path / "project.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in project.rglob("*"):
            zf.write(path, path.relative_to(project).as_posix())
    report = import_labels("labelme", str(archive), default_participant="P1")
    assert report.failed_files == [] and report.labelled == 2
    # the annotations folder alone: ../images leads outside it, and the JSONs embed no picture: refused unless
    # --images names the folder; the reason names the image and the JSON
    alone = import_labels("labelme", str(project / "annotations"), default_participant="P2")
    assert [f["reason"] for f in alone.failed_files] == [
        f"image ../images/{name}.jpg is outside the import folder, and {name}.json embeds no picture (imageData): "
        "import the folder that holds both, or give --images" for name in ("a", "b")]
    given = import_labels("labelme", str(project / "annotations"), images_dir=str(project / "images"), default_participant="P2")
    assert given.failed_files == [] and given.labelled == 2


def test_labelme_picture_only_embedded_as_image_data(db, tmp_path):
    data = jpeg_bytes(synthetic_picture(80, 60, (90, 40, 160)))
    labelme_json(tmp_path / "hand.json", "hand.jpg", image_data=data)  # no hand.jpg anywhere
    report = import_labels("labelme", str(tmp_path / "hand.json"), default_participant="P1")
    assert report.failed_files == [] and report.labelled == 1 and report.images_created == 1
    assert any("imageData" in w for w in report.warnings)
    upload = Upload.objects.get()
    assert upload.sha256 == sha(data) and upload.original_name == "hand.jpg" and upload.content_type == "image/jpeg"
    image = Image.objects.get()
    assert (image.width, image.height) == (80, 60) and nail_of(image)["finger"] == 1


def test_labelme_annotations_folder_alone_with_image_data_comes_in_from_the_json(db, tmp_path):
    """`labelme images/ --output annotations/` with the pictures kept in the JSONs: the annotations folder
    alone comes in from imageData; the "../images/x.jpg" it names outside the import is not read."""
    project = tmp_path / "project"
    on_disk = photo(project / "images" / "hand.jpg", (1, 2, 3))  # outside the import: must not be read
    embedded = jpeg_bytes(synthetic_picture(80, 60, (90, 40, 160)))
    labelme_json(project / "annotations" / "hand.json", "../images/hand.jpg", image_data=embedded)
    labelme_json(project / "annotations" / "gone.json", "../images/gone.jpg")  # neither file nor data
    report = import_labels("labelme", str(project / "annotations"), default_participant="P1")
    assert report.labelled == 1 and report.images_created == 1
    assert report.failed_files == [{"file": "gone.json", "reason": "image ../images/gone.jpg is outside the import folder, "
                                    "and gone.json embeds no picture (imageData): import the folder that holds both, or "
                                    "give --images"}]
    assert any("hand.json" in w and "imageData" in w for w in report.warnings)
    upload = Upload.objects.get()
    assert upload.sha256 == sha(embedded) != sha(on_disk) and upload.original_name == "hand.jpg"
    assert nail_of(Image.objects.get())["finger"] == 1
    # inside the folder and not there, no data either: the reason names the image and the JSON
    labelme_json(tmp_path / "flat" / "lost.json", "lost.jpg")
    flat = import_labels("labelme", str(tmp_path / "flat"), default_participant="P1")
    assert flat.failed_files == [{"file": "lost.json", "reason": "image lost.jpg was not found next to the labels, and "
                                  "lost.json embeds no picture (imageData): give --images"}]


def test_a_file_beside_the_json_wins_over_image_data_and_bad_image_data_goes_through_intake(db, tmp_path):
    on_disk = photo(tmp_path / "a" / "hand.jpg")
    labelme_json(tmp_path / "a" / "hand.json", "hand.jpg", image_data=jpeg_bytes(synthetic_picture(80, 60, (5, 5, 5))))
    assert import_labels("labelme", str(tmp_path / "a"), default_participant="P1").labelled == 1
    assert Upload.objects.get().sha256 == sha(on_disk)
    labelme_json(tmp_path / "b" / "notes.json", "notes.png", image_data=b"just some text, not a picture at all")
    report = import_labels("labelme", str(tmp_path / "b"), default_participant="P1")
    [failure] = report.failed_files
    assert failure["file"] == "notes.json" and "not a photo or video" in failure["reason"]
    assert Upload.objects.count() == 1 and Image.objects.count() == 1
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "broken.json").write_text(json.dumps({"shapes": [], "imagePath": "x.jpg", "imageData": "@@not base64@@"}))
    report = import_labels("labelme", str(tmp_path / "c"), default_participant="P1")
    assert "imageData is not valid base64" in report.failed_files[0]["reason"]


CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>7</id><name>nails</name><size>2</size><mode>annotation</mode>
      <labels>
        <label><name>left_thumb</name><color>#fa3253</color><type>polygon</type><attributes></attributes></label>
        <label><name>right_index</name><color>#33ddff</color><type>polygon</type><attributes></attributes></label>
        <label><name>base</name><color>#ff6037</color><type>points</type><attributes></attributes></label>
        <label><name>tip</name><color>#ddff33</color><type>points</type><attributes></attributes></label>
      </labels>
    </task>
    <dumped>2024-05-02 10:00:00.000000+00:00</dumped>
  </meta>
  <image id="0" name="left/hand.jpg" width="80" height="60">
    <polygon label="left_thumb" source="manual" occluded="0" points="10.00,10.00;30.00,10.00;30.00,30.00;10.00,30.00" z_order="0" group_id="1">
    </polygon>
    <points label="base" source="manual" occluded="0" points="20.00,28.00" z_order="0" group_id="1">
    </points>
    <points label="tip" source="manual" occluded="0" points="20.00,12.00" z_order="0" group_id="1">
    </points>
  </image>
  <image id="1" name="right/hand.jpg" width="80" height="60">
    <polygon label="right_index" source="manual" occluded="0" points="10.00,10.00;30.00,10.00;30.00,30.00;10.00,30.00" z_order="0">
    </polygon>
  </image>
</annotations>
"""


def test_cvat_annotations_xml_alone_finds_images_beside_it_by_their_names_with_folders(db, tmp_path):
    """CVAT's export: annotations.xml and images/<name>; two pictures share a base name in different folders."""
    task = tmp_path / "task"
    left = photo(task / "images" / "left" / "hand.jpg")
    right = photo(task / "images" / "right" / "hand.jpg", (10, 200, 30))
    (task / "annotations.xml").write_text(CVAT_XML)
    out = StringIO()
    call_command("import_labels", str(task / "annotations.xml"), "--format", "cvat", "--participant", "P1", stdout=out)
    assert "1 annotation files, 0 refused: 2 images labelled" in out.getvalue()
    by_sha = {image.upload.sha256: image for image in Image.objects.select_related("upload")}
    assert nail_of(by_sha[sha(left)]) == {"polygon": SQUARE, "finger": 1, "base": [20.0, 28.0], "tip": [20.0, 12.0]}
    assert nail_of(by_sha[sha(right)])["finger"] == 7


def test_cvat_with_the_images_elsewhere_needs_images_option(db, tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "annotations.xml").write_text(CVAT_XML)
    photo(tmp_path / "pictures" / "left" / "hand.jpg")
    photo(tmp_path / "pictures" / "right" / "hand.jpg", (10, 200, 30))
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("import_labels", str(tmp_path / "labels"), "--format", "cvat", "--participant", "P1", stdout=out)
    assert "image left/hand.jpg was not found next to the labels" in out.getvalue()
    out = StringIO()
    call_command("import_labels", str(tmp_path / "labels"), "--format", "cvat", "--participant", "P1",
                 "--images", str(tmp_path / "pictures"), stdout=out)
    assert "2 images labelled" in out.getvalue() and Image.objects.count() == 2


def test_a_base_name_that_several_files_carry_is_not_guessed(db, tmp_path):
    photo(tmp_path / "x" / "hand.jpg"), photo(tmp_path / "y" / "hand.jpg", (10, 200, 30))
    labelme_json(tmp_path / "labels" / "hand.json", "hand.jpg")
    report = import_labels("labelme", str(tmp_path), default_participant="P1")
    assert "2 files of that name" in report.failed_files[0]["reason"] and Image.objects.count() == 0


def test_a_single_file_as_path_is_named_by_its_name(db, tmp_path):
    labelme_json(tmp_path / "hand.json", "hand.jpg")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("import_labels", str(tmp_path / "hand.json"), "--format", "labelme", "--participant", "P1", stdout=out)
    assert ("refused hand.json (nothing of it was imported): image hand.jpg was not found next to the labels, and "
            "hand.json embeds no picture (imageData): give --images") in out.getvalue()
    assert "from ." not in out.getvalue() and "refused . " not in out.getvalue()
    photo(tmp_path / "hand.jpg")
    report = import_labels("labelme", str(tmp_path / "hand.json"), default_participant="P1")
    assert report.failed_files == [] and report.labelled == 1 and report.files == 1
    (tmp_path / "other.json").write_text(json.dumps({"images": [], "categories": []}))
    refused = import_labels("labelme", str(tmp_path / "other.json"), default_participant="P1")  # named on its own
    assert refused.failed_files == [{"file": "other.json", "reason": "other.json is not a LabelMe file (no shapes list)"}]
