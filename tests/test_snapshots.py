"""Snapshots: built from accepted labels, immutable, stable leak-free participant splits."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from curation.models import ParticipantSplit, Snapshot
from curation.snapshots import SnapshotError, build_snapshot, pin_participant
from labeling.annotations import import_annotation
from labeling.intake import create_image
from labeling.models import Participant
from tests.conftest import synthetic_picture


def nail(x, finger=None, landmarks=False):
    polygon = [[x, 5], [x + 8, 5], [x + 8, 20], [x, 20]]
    return {"polygon": polygon, "finger": finger, "base": [x + 4, 18] if landmarks else None, "tip": [x + 4, 7] if landmarks else None}


def labelled_dataset(participants=12, per_participant=3, status="accepted", prefix="S"):
    """Each participant gets images with distinct content and labels; returns the participants."""
    people = []
    for p in range(participants):
        person = Participant.objects.create(code=f"{prefix}{p:03d}")
        people.append(person)
        for i in range(per_participant):
            picture = synthetic_picture(64, 48, ((p * 37 + i * 11) % 256, (p * 13) % 256, (i * 71) % 256))
            picture.putpixel((p % 64, i % 48), (255, 255, 255))
            image, _ = create_image(person, picture, "PNG")
            import_annotation(image, {"nails": [nail(4, finger=(p % 10) + 1, landmarks=True), nail(30)]}, status=status, note="test")
    return people


def test_snapshot_freezes_accepted_labels_with_hash_counts_and_splits(db):
    labelled_dataset(12, 3)
    extra = Participant.objects.create(code="DRAFTY")
    image, _ = create_image(extra, synthetic_picture(40, 40, (1, 2, 3)), "PNG")
    import_annotation(image, {"nails": [nail(4)]}, status="submitted", note="test")
    snapshot = build_snapshot("v1", seed=3)
    assert snapshot.status == "ready" and len(snapshot.content_hash) == 64
    assert snapshot.counts["images"] == 36  # the submitted one is not in
    splits = snapshot.counts["splits"]
    assert sum(s["participants"] for s in splits.values()) == 12 and all(s["images"] for s in splits.values())
    assert splits["train"]["nails"] == 2 * splits["train"]["images"]
    for code in snapshot.items.values_list("participant__code", flat=True).distinct():  # no participant in two splits
        assert snapshot.items.filter(participant__code=code).values("split").distinct().count() == 1
    with_submitted = build_snapshot("v1-sub", include_submitted=True)
    assert with_submitted.counts["images"] == 37


def test_snapshot_is_immutable_and_its_hash_depends_on_labels(db):
    people = labelled_dataset(4, 2)
    first = build_snapshot("a")
    item = first.items.first()
    frozen = item.geometry
    import_annotation(item.image, {"nails": [nail(10, finger=5)]}, status="accepted", note="edit", replace=True)
    item.refresh_from_db()
    assert item.geometry == frozen  # the snapshot keeps what it had
    second = build_snapshot("b")
    assert second.content_hash != first.content_hash
    third = build_snapshot("c")
    assert third.content_hash == second.content_hash  # same data, same hash
    with pytest.raises(SnapshotError, match="exists already"):
        build_snapshot("a")
    assert people


def test_participants_keep_their_split_when_others_join_and_pins_win(db):
    labelled_dataset(10, 2, prefix="OLD")
    first = build_snapshot("first", seed=1)
    before = dict(first.items.values_list("participant__code", "split").distinct())
    labelled_dataset(15, 2, prefix="NEW")
    pinned_code = next(iter(before))
    target = next(s for s in ("train", "val", "test") if s != before[pinned_code])
    pin_participant(Participant.objects.get(code=pinned_code), target)
    second = build_snapshot("second", seed=99)  # a different seed must not move anyone either
    after = dict(second.items.values_list("participant__code", "split").distinct())
    assert all(after[code] == split for code, split in before.items() if code != pinned_code)
    assert after[pinned_code] == target
    assert ParticipantSplit.objects.count() == 25


def test_near_duplicates_across_splits_are_reported(db):
    people = labelled_dataset(6, 1)
    snapshot = build_snapshot("probe")
    splits = dict(snapshot.items.values_list("participant__code", "split"))
    a = next(code for code, split in splits.items() if split == "train")
    b = next(code for code, split in splits.items() if split != "train")
    twin_source = Participant.objects.get(code=a).images.first()
    with twin_source.file.open("rb") as fh:
        from PIL import Image as PILImage

        twin = PILImage.open(fh).convert("RGB")
    brighter = twin.point(lambda v: min(255, v + 3))
    image, _ = create_image(Participant.objects.get(code=b), brighter, "JPEG")
    import_annotation(image, {"nails": [nail(4)]}, status="accepted", note="test")
    leaks = build_snapshot("leaky").leaks
    assert any({leak["image_a"], leak["image_b"]} == {twin_source.pk, image.pk} for leak in leaks)
    assert people


def test_snapshot_marks_erased_participants(db, django_capture_on_commit_callbacks):
    from labeling.erasure import erase_participant

    people = labelled_dataset(3, 1)
    snapshot = build_snapshot("before-erasure")
    assert not snapshot.holds_erased_data
    erase_participant(people[0])
    assert snapshot.holds_erased_data
    # Their frozen labels and image hashes leave the snapshot too; it counts what went.
    snapshot.refresh_from_db()
    assert snapshot.items.filter(participant=people[0]).count() == 0 and snapshot.erased_items == 1


def test_snapshot_command_and_api(client_for, db):
    labelled_dataset(5, 2)
    out = StringIO()
    call_command("snapshot", "cmd-made", "--ratios", "0.6", "0.2", "0.2", "--seed", "4", stdout=out)
    assert "snapshot cmd-made" in out.getvalue() and "train" in out.getvalue()
    with pytest.raises(CommandError, match="ratios must be three non-negative numbers"):
        call_command("snapshot", "bad", "--ratios", "0.6", "0.6", "0.2", stdout=StringIO())
    admin, reviewer = client_for("admin"), client_for("reviewer")
    assert admin.post("/api/snapshots/", {"name": "api-made"}, format="json").status_code == 202
    assert admin.post("/api/snapshots/", {"name": "cmd-made"}, format="json").status_code == 400
    assert reviewer.post("/api/snapshots/", {"name": "x"}, format="json").status_code == 403
    assert reviewer.get("/api/snapshots/cmd-made/").json()["counts"]["images"] == 10
    stats = reviewer.get("/api/dataset/stats/").json()
    assert stats["nails"] == 20 and stats["completeness"]["missing_finger"] == 10


def test_no_accepted_labels_is_a_clear_failure(db):
    with pytest.raises(SnapshotError, match="no accepted annotations"):
        build_snapshot("empty")
    assert not Snapshot.objects.exists()
