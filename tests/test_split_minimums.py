"""Splits always give val and test a participant when they can, and say when the ratios cannot be met (issue #15)."""
from io import StringIO

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from dataset.splits import SPLITS, participant_split, split_summary, split_warnings
from labeling.annotations import import_annotation
from labeling.intake import create_image
from labeling.models import Participant
from tests.conftest import synthetic_picture
from tests.test_snapshots import nail

SEEDS = range(12)


def participants_per_split(assignment, counts):
    summary = split_summary(assignment, counts)
    return {split: summary[split]["participants"] for split in SPLITS}


# ---------------------------------------------------------------- dataset.splits (no Django)

@pytest.mark.parametrize("seed", SEEDS)
def test_ten_one_one_gives_val_and_test_a_participant_and_keeps_the_big_one_in_train(seed):
    counts = {"big": 10, "small-a": 1, "small-b": 1}
    assignment = participant_split(counts, seed=seed)
    assert assignment["big"] == "train"  # the move that brings the images closest to the targets
    assert sorted(assignment.values()) == ["test", "train", "val"]
    warnings = split_warnings(assignment, counts)
    assert len(warnings) == 1 and "train 83.3% / val 8.3% / test 8.3%" in warnings[0]
    assert "65.0% / 18.0% / 17.0%" in warnings[0] and "3 participants with images" in warnings[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_three_equal_participants_one_per_split(seed):
    counts = {"a": 5, "b": 5, "c": 5}
    assignment = participant_split(counts, seed=seed)
    assert sorted(assignment.values()) == ["test", "train", "val"]
    assert len(split_warnings(assignment, counts)) == 1  # 33 % each is far from 65 / 18 / 17


@pytest.mark.parametrize("seed", SEEDS)
def test_two_participants_go_to_train_and_val_and_the_empty_test_is_reported(seed):
    counts = {"a": 4, "b": 9}
    assignment = participant_split(counts, seed=seed)
    assert sorted(assignment.values()) == ["train", "val"]
    assert assignment["b"] == "train"
    warnings = split_warnings(assignment, counts)
    assert warnings[0] == ("test gets no images although its ratio is 0.17: "
                           "only 2 participants with images for 3 splits with a non-zero ratio")


def test_one_participant_reports_both_empty_splits():
    warnings = split_warnings(participant_split({"solo": 3}), {"solo": 3})
    assert [w.split(":")[0] for w in warnings[:2]] == ["val gets no images although its ratio is 0.18",
                                                       "test gets no images although its ratio is 0.17"]
    assert "1 participant with images" in warnings[0]


def test_zero_ratios_stay_empty_without_a_warning_about_them():
    counts = {"a": 10, "b": 1, "c": 1, "d": 0}
    for seed in SEEDS:
        assignment = participant_split(counts, ratios=(0.8, 0.2, 0.0), seed=seed)
        assert "test" not in assignment.values()
        assert participants_per_split(assignment, counts)["val"] >= 1
        assert not any(w.startswith("test") for w in split_warnings(assignment, counts, (0.8, 0.2, 0.0)))
        only_train = participant_split(counts, ratios=(1, 0, 0), seed=seed)
        assert set(only_train.values()) == {"train"}
        assert split_warnings(only_train, counts, (1, 0, 0)) == []


def test_a_participant_without_images_does_not_count_as_filling_a_split():
    counts = {"a": 10, "b": 1, "c": 1, "nothing-yet": 0}
    assignment = participant_split(counts, existing={"nothing-yet": "val"})
    assert assignment["nothing-yet"] == "val"
    holders = {split for code, split in assignment.items() if counts[code]}
    assert holders == set(SPLITS)


def test_existing_participants_never_move_to_fill_a_split_and_the_reason_is_given():
    counts = {"old1": 3, "old2": 3, "old3": 3, "new": 5}
    existing = {"old1": "train", "old2": "train", "old3": "train"}
    assignment = participant_split(counts, existing=existing)
    assert {code: assignment[code] for code in existing} == existing
    assert assignment["new"] == "val"  # the one movable participant fills the larger ratio
    warnings = split_warnings(assignment, counts, fixed=existing)
    assert warnings[0].startswith("test gets no images although its ratio is 0.17: 3 of the 4 participants with images "
                                  "keep the split they already have")
    assert "only a pin moves a participant" in warnings[0]


def test_pins_win_and_only_new_participants_are_moved_to_fill():
    counts = {"pinned1": 6, "pinned2": 6, "new1": 1, "new2": 1, "new3": 1}
    pinned = {"pinned1": "test", "pinned2": "test"}
    for seed in SEEDS:
        assignment = participant_split(counts, seed=seed, pinned=pinned, existing={"pinned1": "train"})
        assert assignment["pinned1"] == "test" and assignment["pinned2"] == "test"
        assert participants_per_split(assignment, counts)["train"] >= 1
        assert participants_per_split(assignment, counts)["val"] >= 1


def test_a_big_balanced_dataset_has_no_warnings():
    counts = {f"p{i:03d}": 3 + i % 4 for i in range(200)}
    assignment = participant_split(counts)
    assert split_warnings(assignment, counts) == []


ratio_triples = st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)).filter(any).map(
    lambda t: tuple(v / sum(t) for v in t))


@settings(max_examples=300, deadline=None)
@given(counts=st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), st.integers(0, 12), max_size=12),
       fixed=st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), st.sampled_from(SPLITS), max_size=5),
       pin=st.booleans(), ratios=ratio_triples, seed=st.integers(0, 50))
def test_non_zero_splits_are_non_empty_whenever_possible(counts, fixed, pin, ratios, seed):
    kwargs = {"pinned": fixed} if pin else {"existing": fixed}
    assignment = participant_split(counts, ratios=ratios, seed=seed, **kwargs)
    assert {code: assignment[code] for code in fixed} == fixed  # stability: fixed participants never move
    holders = {split: {c for c, s in assignment.items() if s == split and counts.get(c, 0)} for split in SPLITS}
    fixed_holders = {split: {c for c, s in fixed.items() if s == split and counts.get(c, 0)} for split in SPLITS}
    wanting = [split for split, ratio in zip(SPLITS, ratios) if ratio > 0 and not fixed_holders[split]]
    movable = sum(1 for code, n in counts.items() if n and code not in fixed)
    filled = sum(1 for split in wanting if holders[split])
    assert filled == min(len(wanting), movable)  # every wanting split is filled while movable participants last
    for split, ratio in zip(SPLITS, ratios):
        if ratio == 0:
            assert holders[split] <= fixed_holders[split]  # no new participant goes to a zero-ratio split
    warned = {w.split(" ")[0] for w in split_warnings(assignment, counts, ratios, fixed=fixed) if " gets no images " in w}
    expected = {split for split, ratio in zip(SPLITS, ratios) if ratio > 0 and not holders[split]} if any(counts.values()) else set()
    assert warned == expected
    if not fixed and sum(1 for n in counts.values() if n) >= 3 and all(ratios):
        assert all(holders.values())  # the headline: 3+ participants, non-zero ratios -> train, val and test


# ---------------------------------------------------------------- snapshots and the command

def participant_with_images(code, n):
    person = Participant.objects.create(code=code)
    for i in range(n):
        picture = synthetic_picture(64, 48, ((len(code) * 41 + i * 23) % 256, (i * 67) % 256, (ord(code[-1]) * 5) % 256))
        picture.putpixel((i % 64, (i * 7) % 48), (255, 255, 255))
        image, _ = create_image(person, picture, "PNG")
        import_annotation(image, {"nails": [nail(4, finger=1, landmarks=True)]}, status="accepted", note="test")
    return person


def test_snapshot_of_ten_one_one_has_val_and_test_and_the_command_prints_the_warning(db):
    participant_with_images("BIG", 10)
    participant_with_images("SMALLA", 1)
    participant_with_images("SMALLB", 1)
    out = StringIO()
    call_command("snapshot", "tiny", stdout=out)
    text = out.getvalue()
    from curation.models import Snapshot

    snapshot = Snapshot.objects.get(name="tiny")
    splits = snapshot.counts["splits"]
    assert [splits[s]["participants"] for s in SPLITS] == [1, 1, 1]
    assert [splits[s]["images"] for s in SPLITS] == [10, 1, 1]
    warning = "warning: image shares train 83.3% / val 8.3% / test 8.3% miss the ratios"
    assert warning in text and text.index(warning) < text.index("snapshot tiny (")
    assert any(w.startswith("image shares train 83.3%") for w in snapshot.job.result["warnings"])
    assert "warning: image shares" in snapshot.job.log


def test_snapshot_warns_when_earlier_assignments_leave_test_empty(db):
    from curation.snapshots import build_snapshot

    participant_with_images("ONE", 2)
    participant_with_images("TWO", 2)
    first_warnings = []
    build_snapshot("first", warn=first_warnings.append)
    assert first_warnings[0].startswith("test gets no images") and "only 2 participants" in first_warnings[0]
    participant_with_images("THREE", 2)  # arrives later; ONE and TWO keep train and val
    warnings = []
    second = build_snapshot("second", warn=warnings.append)
    assert [second.counts["splits"][s]["participants"] for s in SPLITS] == [1, 1, 1]
    assert not any(w.startswith("test gets no images") for w in warnings)
