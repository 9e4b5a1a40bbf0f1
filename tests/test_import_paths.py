"""Image paths named inside imported label files stay inside the import folder (issue #13, row 7).

A COCO file_name, a LabelMe imagePath or a CVAT image name that leads outside the folder (or extracted zip,
or the images folder) given to the import, by ``..``, an absolute path or a symbolic link, gets that
annotation file refused with the reason; nothing of the file outside is read or stored.
"""
import json
import zipfile

import pytest

from curation.transfer import import_labels
from labeling.models import Image, Upload
from tests.conftest import jpeg_bytes, synthetic_picture

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]


def photo(path, color=(200, 120, 130)):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(synthetic_picture(80, 60, color)))
    return path


def coco(path, *file_names):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": name, "width": 80, "height": 60} for i, name in enumerate(file_names, start=1)],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "iscrowd": 0,
                         "segmentation": [[v for point in SQUARE for v in point]]} for i in range(1, len(file_names) + 1)],
        "categories": [{"id": 1, "name": "nail"}],
    }))
    return path


def labelme(path, image_path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"imagePath": image_path, "imageWidth": 80, "imageHeight": 60,
                                "shapes": [{"label": "nail", "shape_type": "polygon", "points": SQUARE}]}))
    return path


@pytest.fixture
def secret(tmp_path):
    """A photo outside every import folder: an attacker's label file names it."""
    return photo(tmp_path / "elsewhere" / "secret.jpg", (10, 200, 30))


@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_coco_file_name_outside_the_folder_is_refused_and_nothing_is_read(db, tmp_path, secret, how):
    folder = tmp_path / "import"
    photo(folder / "good.jpg")
    named = str(secret) if how == "absolute" else "../elsewhere/secret.jpg"
    coco(folder / "bad.json", named)
    coco(folder / "good.json", "good.jpg")
    report = import_labels("coco", str(folder), default_participant="P1")
    assert report.failed_files == [{"file": "bad.json", "reason": f"image {named} is outside the import folder"}]
    assert report.labelled == 1 and Image.objects.count() == 1  # the good file beside it still comes in
    assert Upload.objects.get().original_name == "good.jpg"


def test_a_link_inside_the_folder_to_a_file_outside_is_refused(db, tmp_path, secret):
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "linked.jpg").symlink_to(secret)
    coco(folder / "labels.json", "linked.jpg")
    report = import_labels("coco", str(folder), default_participant="P1")
    assert report.failed_files == [{"file": "labels.json", "reason": "image linked.jpg is outside the import folder"}]
    assert Image.objects.count() == 0 and Upload.objects.count() == 0


def test_a_link_found_by_its_base_name_is_refused_too(db, tmp_path, secret):
    folder = tmp_path / "import"
    (folder / "deep" / "er").mkdir(parents=True)
    (folder / "deep" / "er" / "hand.jpg").symlink_to(secret)
    coco(folder / "labels.json", "photos/hand.jpg")  # not there as written: found by its name below the folder
    report = import_labels("coco", str(folder), default_participant="P1")
    assert report.failed_files == [{"file": "labels.json", "reason": "image photos/hand.jpg is a link to a file outside the import folder"}]
    assert Image.objects.count() == 0


def test_a_linked_folder_leading_outside_is_refused(db, tmp_path, secret):
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "pictures").symlink_to(secret.parent, target_is_directory=True)
    coco(folder / "labels.json", "pictures/secret.jpg")
    report = import_labels("coco", str(folder), default_participant="P1")
    assert report.failed_files == [{"file": "labels.json", "reason": "image pictures/secret.jpg is outside the import folder"}]
    assert Image.objects.count() == 0


def test_labelme_usual_layout_works_and_a_path_leaving_the_root_is_refused(db, tmp_path, secret):
    root = tmp_path / "project"
    photo(root / "images" / "hand.jpg")
    labelme(root / "annotations" / "hand.json", "../images/hand.jpg")  # relative to the JSON, inside the root
    photo(root / "images" / "secret.jpg", (1, 2, 3))  # same base name inside: must not stand in for the outside one
    labelme(root / "annotations" / "evil.json", "../../elsewhere/secret.jpg")
    report = import_labels("labelme", str(root), default_participant="P1")
    assert report.failed_files == [{"file": "annotations/evil.json",
                                     "reason": "image ../../elsewhere/secret.jpg is outside the import folder, and "
                                               "evil.json embeds no picture (imageData): import the folder that holds "
                                               "both, or give --images"}]
    assert report.labelled == 1 and Upload.objects.get().original_name == "hand.jpg"


def test_cvat_image_name_outside_the_folder_is_refused(db, tmp_path, secret):
    folder = tmp_path / "cvat"
    folder.mkdir()
    (folder / "annotations.xml").write_text(f"""<annotations><version>1.1</version>
      <image id="0" name="{secret}" width="80" height="60">
        <polygon label="nail" points="10,10;30,10;30,30;10,30"/>
      </image></annotations>""")
    report = import_labels("cvat", str(folder), default_participant="P1")
    assert report.failed_files == [{"file": "annotations.xml", "reason": f"image {secret} is outside the import folder"}]
    assert Image.objects.count() == 0


def test_a_zip_naming_a_file_outside_the_archive_is_refused(db, tmp_path, secret):
    labels = coco(tmp_path / "staging" / "instances.json", "../../../../../../../../.." + str(secret))
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(labels, "annotations/instances.json")
    report = import_labels("coco", str(archive), default_participant="P1")
    [failure] = report.failed_files
    assert failure["file"] == "annotations/instances.json" and failure["reason"].endswith("is outside the import folder")
    assert Image.objects.count() == 0


def test_the_images_folder_given_to_the_import_counts_as_inside(db, tmp_path):
    labels_folder, images_folder = tmp_path / "labels", tmp_path / "pictures"
    photo(images_folder / "hand.jpg")
    coco(labels_folder / "labels.json", "hand.jpg")
    without = import_labels("coco", str(labels_folder), default_participant="P1")
    assert without.failed_files == [{"file": "labels.json", "reason": "image hand.jpg was not found next to the labels"}]
    report = import_labels("coco", str(labels_folder), images_dir=str(images_folder), default_participant="P1")
    assert report.failed_files == [] and report.labelled == 1
