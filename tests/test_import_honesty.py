"""Honest imports (issue #15): an annotation file with anything wrong is refused whole, with the list of its
problems, unless --skip-invalid; job commands exit non-zero when the job failed or refused an input file,
and print every refusal and warning before the summary line."""
import json
import math
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from curation.transfer import import_labels
from jobs.models import Job
from labeling.models import Annotation, Image, Participant, Upload
from tests.conftest import jpeg_bytes, synthetic_picture
from tests.test_uploads import media_files
from tests.worker import database_url

SQUARE = [10, 10, 30, 10, 30, 30, 10, 30]
OTHER = [40, 10, 60, 10, 60, 30, 40, 30]


def photo(path: Path, color=(200, 120, 130), size=(80, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(synthetic_picture(*size, color)))
    return path


def coco_file(path: Path, image_name: str, annotations: list, categories=None, images=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "images": images if images is not None else [{"id": 1, "file_name": image_name, "width": 80, "height": 60}],
        "annotations": annotations,
        "categories": categories or [{"id": 1, "name": "left_thumb"}, {"id": 2, "name": "left_index"}],
    }))  # allow_nan: NaN is written as the bare NaN that Python's and many tools' JSON accept
    return path


def nail(ann_id: int, segmentation, image_id: int = 1, category_id: int = 1) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "iscrowd": 0, "segmentation": [segmentation]}


def good_and_bad(folder: Path, bad_annotation: dict, categories=None) -> None:
    """good.json labels good.jpg; bad.json labels bad.jpg with one valid nail and the bad annotation beside it."""
    photo(folder / "good.jpg")
    photo(folder / "bad.jpg", (10, 200, 30))
    coco_file(folder / "good.json", "good.jpg", [nail(1, SQUARE)], categories)
    coco_file(folder / "bad.json", "bad.jpg", [nail(1, SQUARE), bad_annotation], categories)


BAD_ANNOTATIONS = {
    "two-point polygon": (nail(2, [40, 10, 60, 30], category_id=2), "annotation 2: a malformed polygon"),
    "NaN coordinates": (nail(2, [40, 10, math.nan, 10, 60, 30, 40, 30], category_id=2), "annotation 2: a malformed polygon"),
    "dangling image_id": (nail(2, OTHER, image_id=7, category_id=2), "annotation 2 refers to no listed image"),
    "unknown label": (nail(2, OTHER, category_id=3), "unknown label 'hand'"),
}
CATEGORIES = [{"id": 1, "name": "left_thumb"}, {"id": 2, "name": "left_index"}, {"id": 3, "name": "hand"}]


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_a_bad_shape_refuses_its_whole_file_and_nothing_of_it_is_stored(db, tmp_path, case,
                                                                        django_capture_on_commit_callbacks):
    bad, expected = BAD_ANNOTATIONS[case]
    good_and_bad(tmp_path, bad, CATEGORIES)
    before = media_files()
    with django_capture_on_commit_callbacks(execute=True):
        report = import_labels("coco", str(tmp_path), default_participant="P1")
    [failure] = report.failed_files
    assert failure["file"] == "bad.json" and expected in failure["reason"]
    assert [p["outcome"] for p in report.problems] == ["refused"] and expected in report.problems[0]["problem"]
    assert report.labelled == 1 and report.images_created == 1
    # nothing of bad.json: not its image (with its valid nail), not its upload, not its files
    assert Upload.objects.get().original_name == "good.jpg"
    assert Image.objects.count() == 1 and Annotation.objects.get().geometry["nails"][0]["finger"] == 1
    image = Image.objects.get()
    assert media_files() - before == {Path(image.file.path), Path(image.thumbnail.path)}


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_skip_invalid_imports_the_rest_and_reports_what_was_skipped(db, tmp_path, case):
    bad, expected = BAD_ANNOTATIONS[case]
    good_and_bad(tmp_path, bad, CATEGORIES)
    report = import_labels("coco", str(tmp_path), default_participant="P1", skip_invalid=True)
    assert report.failed_files == [] and report.labelled == 2
    [skipped] = report.problems
    assert skipped["file"] == "bad.json" and skipped["outcome"] == "skipped" and expected in skipped["problem"]
    bad_image = Image.objects.get(upload__original_name="bad.jpg")
    nails = Annotation.objects.get(image=bad_image).geometry["nails"]
    assert [n["polygon"] for n in nails] == [[[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]]


def test_every_problem_of_a_file_is_listed(db, tmp_path):
    """Malformed shapes, a dangling reference, an unknown label and an image that is not there: all named."""
    photo(tmp_path / "a.jpg")
    images = [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 60},
              {"id": 2, "file_name": "missing.jpg", "width": 80, "height": 60}]
    annotations = [nail(1, SQUARE), nail(2, [1, 2, 3, 4], category_id=2), nail(3, OTHER, image_id=9),
                   nail(4, OTHER, category_id=3), nail(5, SQUARE, image_id=2)]
    coco_file(tmp_path / "labels.json", "", annotations, CATEGORIES, images=images)
    report = import_labels("coco", str(tmp_path), default_participant="P1")
    [failure] = report.failed_files
    assert failure["reason"].startswith("4 problems: ")
    problems = [p["problem"] for p in report.problems]
    assert len(problems) == 4 and all(p["outcome"] == "refused" for p in report.problems)
    for expected in ("annotation 2: a malformed polygon", "annotation 3 refers to no listed image",
                     "unknown label 'hand'", "image missing.jpg was not found"):
        assert sum(expected in p for p in problems) == 1, (expected, problems)
    assert Image.objects.count() == 0 and Upload.objects.count() == 0 and Participant.objects.count() == 0


def test_labelme_and_cvat_files_with_a_bad_shape_are_refused_whole(db, tmp_path):
    lm = tmp_path / "lm"
    photo(lm / "good.jpg"), photo(lm / "bad.jpg", (10, 200, 30))
    square = [[10, 10], [30, 10], [30, 30], [10, 30]]
    for name, extra in (("good", []), ("bad", [{"label": "tip", "points": [[70, 50]], "shape_type": "point",
                                                 "group_id": None, "flags": {}}])):  # a tip that belongs to no nail
        (lm / f"{name}.json").write_text(json.dumps({
            "version": "5.4.1", "flags": {}, "imagePath": f"{name}.jpg", "imageData": None, "imageHeight": 60, "imageWidth": 80,
            "shapes": [{"label": "left_thumb", "points": square, "group_id": None, "shape_type": "polygon", "flags": {}}, *extra]}))
    report = import_labels("labelme", str(lm), default_participant="P1")
    assert report.labelled == 1 and [f["file"] for f in report.failed_files] == ["bad.json"]
    assert "tip at (70, 50) is not inside any nail" in report.failed_files[0]["reason"]
    cvat = tmp_path / "cvat"
    photo(cvat / "images" / "hand.jpg", (30, 30, 200))
    (cvat / "annotations.xml").write_text("""<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
  <image id="0" name="hand.jpg" width="80" height="60">
    <polygon label="left_thumb" source="manual" occluded="0" points="10.00,10.00;30.00,10.00;30.00,30.00;10.00,30.00" z_order="0"/>
    <polygon label="left_index" source="manual" occluded="0" points="40.00,10.00;nan,10.00;60.00,30.00" z_order="0"/>
  </image></annotations>""")
    report = import_labels("cvat", str(cvat), default_participant="P1")
    assert [f["file"] for f in report.failed_files] == ["annotations.xml"]
    assert "malformed points" in report.failed_files[0]["reason"] and Image.objects.count() == 1


def test_labels_breaking_a_geometry_rule_are_left_out_only_with_skip_invalid(db, tmp_path):
    photo(tmp_path / "hand.jpg")
    outside = [40, 10, 500, 10, 60, 30]
    coco_file(tmp_path / "labels.json", "hand.jpg", [nail(1, SQUARE), nail(2, outside, category_id=2)])
    report = import_labels("coco", str(tmp_path), default_participant="P1")
    assert report.labelled == 0 and "outside the 80x60 image" in report.failed_files[0]["reason"]
    assert Image.objects.count() == 0
    report = import_labels("coco", str(tmp_path), default_participant="P1", skip_invalid=True)
    assert report.failed_files == [] and report.labelled == 1
    [skipped] = report.problems
    assert skipped["outcome"] == "skipped" and skipped["problem"].startswith("hand.jpg: left out nail 2: ")
    assert len(Annotation.objects.get().geometry["nails"]) == 1


def test_skip_invalid_still_refuses_a_file_of_which_nothing_could_come_in(db, tmp_path):
    coco_file(tmp_path / "labels.json", "gone.jpg", [nail(1, SQUARE)])
    report = import_labels("coco", str(tmp_path), default_participant="P1", skip_invalid=True)
    assert report.failed_files == [{"file": "labels.json", "reason": "image gone.jpg was not found next to the labels"}]


def test_a_json_of_another_kind_in_the_folder_is_passed_over_with_a_warning(db, tmp_path):
    photo(tmp_path / "hand.jpg")
    coco_file(tmp_path / "labels.json", "hand.jpg", [nail(1, SQUARE)])
    (tmp_path / "meta.json").write_text(json.dumps({"snapshot": "s1"}))
    report = import_labels("coco", str(tmp_path), default_participant="P1")
    assert report.failed_files == [] and report.labelled == 1 and report.files == 1
    [warning] = report.warnings
    assert warning.startswith("meta.json: not coco annotations (") and warning.endswith("; passed over")


SELF_TOUCHING = [10, 10, 30, 10, 30, 30, 20, 30, 20, 20, 20, 30, 10, 30]  # a spike down and back: repaired


def test_the_command_prints_warnings_and_refusals_before_the_summary_and_exits_non_zero(db, tmp_path):
    photo(tmp_path / "good.jpg"), photo(tmp_path / "bad.jpg", (10, 200, 30))
    coco_file(tmp_path / "good.json", "good.jpg", [nail(1, SELF_TOUCHING)])
    coco_file(tmp_path / "bad.json", "bad.jpg", [nail(1, SQUARE), nail(2, [40, 10, 60, 30]), nail(3, OTHER, image_id=5)])
    out = StringIO()
    with pytest.raises(CommandError, match=r"job \d+ finished, but 1 input file\(s\) were refused"):
        call_command("import_labels", str(tmp_path), "--format", "coco", "--participant", "P1", stdout=out)
    lines = out.getvalue().splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("2 annotation files, 1 refused: 1 images labelled"))
    repaired = next(i for i, line in enumerate(lines) if line.startswith("warning: good.json: good.jpg: nail 1: the polygon "
                                                                           "touched or crossed itself; repaired"))
    refused = lines.index("refused bad.json (nothing of it was imported): 2 problems")
    listed = "\n".join(lines[refused + 1:refused + 3])
    assert "annotation 2: a malformed polygon" in listed and "annotation 3 refers to no listed image" in listed
    assert repaired < summary and refused < summary and summary == len(lines) - 1
    assert Job.objects.get(kind="import_labels").status == "succeeded"
    # the repair was taken (a warning, not a refusal): good.jpg came in
    polygon = Annotation.objects.get().geometry["nails"][0]["polygon"]
    assert {tuple(p) for p in polygon} == {(10.0, 10.0), (30.0, 10.0), (30.0, 30.0), (20.0, 30.0), (10.0, 30.0)}  # spike gone


def test_the_command_exits_zero_with_skip_invalid_and_says_what_it_skipped(db, tmp_path):
    photo(tmp_path / "bad.jpg", (10, 200, 30))
    coco_file(tmp_path / "bad.json", "bad.jpg", [nail(1, SQUARE), nail(2, [40, 10, 60, 30])])
    out = StringIO()
    call_command("import_labels", str(tmp_path), "--format", "coco", "--participant", "P1", "--skip-invalid", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("job ") and lines[-1].endswith(" succeeded")
    assert lines[-2].startswith("1 annotation files, 0 refused: 1 images labelled")
    assert any(line.startswith("skipped in bad.json: bad.jpg: annotation 2: a malformed polygon") for line in lines[:-2])


def test_a_failed_job_and_an_import_of_nothing_exit_non_zero(db, tmp_path):
    with pytest.raises(CommandError, match="no coco annotation files found"):
        call_command("import_labels", str(tmp_path), "--format", "coco", stdout=StringIO())
    assert Job.objects.get(kind="import_labels").status == "failed"
    coco_file(tmp_path / "labels.json", "hand.jpg", [nail(1, SQUARE)])
    photo(tmp_path / "hand.jpg")
    out = StringIO()  # no participant for any image: 0 of 1 files imported
    with pytest.raises(CommandError, match="1 input file"):
        call_command("import_labels", str(tmp_path), "--format", "coco", stdout=out)
    assert "refused labels.json (nothing of it was imported): hand.jpg: no participant" in out.getvalue()


def test_enqueue_returns_zero_at_once_and_says_so_in_help(db, tmp_path):
    out = StringIO()
    call_command("import_labels", str(tmp_path), "--format", "coco", "--enqueue", stdout=out)  # would fail when run
    job = Job.objects.get(kind="import_labels")
    assert job.status == "queued" and f"queued job {job.pk}" in out.getvalue()
    from curation.management.commands.import_labels import Command

    help_text = Command().create_parser("manage.py", "import_labels").format_help()
    assert "exit at once with status 0" in help_text and "Exit status: 0 when the job succeeded" in help_text
    assert "--skip-invalid" in help_text


def test_import_media_exits_non_zero_when_it_rejects_a_file(participant, tmp_path):
    photo(tmp_path / "hand.jpg")
    (tmp_path / "notes.txt").write_text("not a photo")
    out = StringIO()
    with pytest.raises(CommandError, match="1 input file"):
        call_command("import_media", "--participant", participant.code, str(tmp_path), stdout=out)
    lines = out.getvalue().splitlines()
    rejected = next(i for i, line in enumerate(lines) if line.startswith(f"rejected {tmp_path / 'notes.txt'}: "))
    summary = next(i for i, line in enumerate(lines) if line.startswith("2 files: 1 accepted"))
    assert rejected < summary
    out = StringIO()
    call_command("import_media", "--participant", participant.code, str(tmp_path / "hand.jpg"), stdout=out)
    assert "succeeded" in out.getvalue()  # nothing rejected: exit 0


@pytest.mark.django_db(transaction=True)
def test_manage_py_import_labels_exit_status_in_a_shell(tmp_path):
    """A script sees the outcome: `python manage.py import_labels` exits 1 when nothing could be imported, 0 when it all came in."""
    photo(tmp_path / "hand.jpg")
    coco_file(tmp_path / "labels.json", "hand.jpg", [nail(1, SQUARE)])
    env = {"DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "annotation_site.settings", "PATH": "/usr/bin:/bin",
           "NAILSET_VAR_DIR": str(settings.VAR_DIR), "MEDIA_ROOT": str(settings.MEDIA_ROOT)}

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", "import_labels", str(tmp_path), "--format", "coco", *args],
                              cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300)

    failed = manage()  # no participant named
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert "refused labels.json" in failed.stdout and "were refused" in failed.stderr
    assert Image.objects.count() == 0
    done = manage("--participant", "P1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout and Annotation.objects.get().status == "accepted"


def test_skip_invalid_is_a_job_argument_too(db, tmp_path):
    """Jobs started over the API take the same opt-in (``skip_invalid``), validated and passed to the import."""
    from jobs.runner import enqueue_job, execute_job

    photo(tmp_path / "bad.jpg")
    coco_file(tmp_path / "bad.json", "bad.jpg", [nail(1, SQUARE), nail(2, [40, 10, 60, 30])])
    arguments = {"format": "coco", "path": str(tmp_path), "participant": "P1"}
    strict = execute_job(enqueue_job("import_labels", arguments, send=False)[0].pk)
    assert strict.status == "succeeded" and strict.result["labelled"] == 0 and len(strict.result["failed_files"]) == 1
    assert strict.arguments["skip_invalid"] is False
    lenient = execute_job(enqueue_job("import_labels", {**arguments, "skip_invalid": True}, send=False)[0].pk)
    assert lenient.result["labelled"] == 1 and lenient.result["failed_files"] == []
    assert [p["outcome"] for p in lenient.result["problems"]] == ["skipped"]
    assert "skipped in bad.json: bad.jpg: annotation 2: a malformed polygon" in lenient.log
