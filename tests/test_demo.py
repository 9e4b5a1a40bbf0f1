"""`make run`'s demo set-up: users, demo participant and the shared photos with their labels; idempotent."""
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from labeling.models import Annotation, Participant

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nails-cc0"


@pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} is not there (CI always has it)")
def test_setup_demo_twice(db):
    first = StringIO()
    call_command("setup_demo", "--demo-data", str(SHARED), stdout=first)
    assert "40 labelled photos imported" in first.getvalue()
    passwords = [line.split()[-1] for line in first.getvalue().splitlines() if line.startswith("  ")]
    second = StringIO()
    call_command("setup_demo", "--demo-data", str(SHARED), stdout=second)
    assert "imported" not in second.getvalue()
    assert [line.split()[-1] for line in second.getvalue().splitlines() if line.startswith("  ")] == passwords
    assert User.objects.get(username="admin").check_password(passwords[0])
    assert {u.username: [g.name for g in u.groups.all()] for u in User.objects.all()} == {
        "admin": ["admin"], "annotator": ["annotator"], "reviewer": ["reviewer"]}
    assert Annotation.objects.filter(status="accepted").count() == 40
    assert Participant.objects.filter(code="DEMO01").exists()


@pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} is not there (CI always has it)")
def test_setup_demo_loads_the_projects_fingers_and_landmarks(db):
    """The shared COCO file has polygons only; the demo comes in with the project's confirmed finger and
    base/tip of every nail (curation/demo/nails-cc0-labels.json), each base/tip on its nail."""
    from shapely.geometry import Point, Polygon

    from curation.demo_labels import read_demo_labels

    call_command("setup_demo", "--demo-data", str(SHARED), stdout=StringIO())
    wanted = {name: entry["nails"] for name, entry in read_demo_labels()["images"].items()}
    nails = [nail for a in Annotation.objects.all()
             for nail in a.geometry["nails"]]
    assert len(nails) == sum(len(v) for v in wanted.values()) == 227
    with_finger = [n for n in nails if n["finger"]]
    assert len(with_finger) == sum(1 for v in wanted.values() for n in v if n["finger"])
    assert all(n["base"] and n["tip"] for n in nails)
    assert not any(n.get("suggested") for n in nails)  # confirmed, not suggestions
    for nail in nails:
        ring = Polygon(nail["polygon"])
        assert ring.distance(Point(nail["base"])) < 8 and ring.distance(Point(nail["tip"])) < 8


def test_demo_labels_merge_refuses_a_file_that_does_not_fit():
    from curation.demo_labels import DemoLabelsError, merge_into_coco

    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
            "categories": [{"id": 1, "name": "nail"}],
            "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "segmentation": [[10, 10, 30, 10, 30, 40, 10, 40]], "bbox": [10, 10, 20, 30], "area": 600}]}
    good = {"images": {"a.jpg": {"nails": [{"annotation_id": 7, "finger": 7, "base": [20, 39], "tip": [20, 11]}]}}}
    merged = merge_into_coco(coco, good)
    assert merged["annotations"][0]["category_id"] == 7
    assert merged["annotations"][0]["keypoints"] == [20.0, 39.0, 2, 20.0, 11.0, 2]
    assert {c["id"] for c in merged["categories"]} == set(range(1, 12))
    assert coco["annotations"][0]["category_id"] == 1  # the input is not changed
    unknown = {"images": {"a.jpg": {"nails": [{"annotation_id": 7, "finger": None, "base": None, "tip": None}]}}}
    assert merge_into_coco(coco, unknown)["annotations"][0]["category_id"] == 11
    with pytest.raises(DemoLabelsError, match="annotation 7 has no finger/landmark entry"):
        merge_into_coco(coco, {"images": {}})
    with pytest.raises(DemoLabelsError, match="annotation 8 is not in the COCO file"):
        merge_into_coco(coco, {"images": {"a.jpg": {"nails": good["images"]["a.jpg"]["nails"] + [
            {"annotation_id": 8, "finger": 1, "base": [1, 1], "tip": [2, 2]}]}}})
