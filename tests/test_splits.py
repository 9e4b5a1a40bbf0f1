"""Tests for dataset.splits and dataset.phash (plain pytest + hypothesis, no Django)."""
import io
import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from dataset.phash import (
    from_signed64, hamming_distance, near_duplicates, perceptual_hash, to_signed64,
)
from dataset.splits import SPLITS, check_ratios, leak_check, participant_split, split_summary

codes = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
datasets = st.dictionaries(codes, st.integers(0, 20), max_size=60)


def shares(assignment, counts):
    summary = split_summary(assignment, counts)
    return [summary[s]["image_share"] for s in SPLITS]


# ---------------------------------------------------------------- participant_split

@settings(max_examples=100, deadline=None)
@given(datasets, st.integers(0, 10))
def test_every_participant_gets_exactly_one_split_deterministically(counts, seed):
    assignment = participant_split(counts, seed=seed)
    assert assignment.keys() == counts.keys()
    assert set(assignment.values()) <= set(SPLITS)
    shuffled = dict(random.Random(seed).sample(sorted(counts.items()), len(counts)))
    assert participant_split(shuffled, seed=seed) == assignment  # dict order does not matter


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=100, max_size=300), st.integers(0, 1000))
def test_image_shares_are_close_to_the_targets(sizes, seed):
    counts = {f"p{i:03d}": n for i, n in enumerate(sizes)}
    assignment = participant_split(counts, seed=seed)
    for share, target in zip(shares(assignment, counts), (0.65, 0.18, 0.17)):
        assert abs(share - target) < 0.05


def test_participant_shares_are_not_biased_by_size():
    rng = random.Random(7)
    counts = {f"p{i:03d}": rng.choice([1, 1, 2, 3, 5, 8, 40]) for i in range(300)}
    summary = split_summary(participant_split(counts), counts)
    for split, target in zip(SPLITS, (0.65, 0.18, 0.17)):
        assert abs(summary[split]["participant_share"] - target) < 0.08
        assert abs(summary[split]["image_share"] - target) < 0.03


def test_different_seeds_give_different_assignments():
    counts = {f"p{i:02d}": (i * 7) % 11 + 1 for i in range(50)}
    assignments = {tuple(participant_split(counts, seed=seed).items()) for seed in range(10)}
    assert len(assignments) == 10


@settings(max_examples=100, deadline=None)
@given(datasets, datasets, st.integers(0, 5))
def test_adding_participants_never_moves_existing_ones(old, added, seed):
    first = participant_split(old, seed=seed)
    grown = {**added, **old}  # old participants keep (or, below, change) their counts
    second = participant_split(grown, seed=seed, existing=first)
    assert {code: second[code] for code in first} == first
    assert second.keys() == grown.keys()
    more_images = {code: n + 5 for code, n in grown.items()}
    assert {code: split for code, split in participant_split(more_images, existing=second).items()
            if code in second} == second


def test_new_participants_fill_what_existing_ones_leave():
    counts = {f"old{i}": 10 for i in range(20)}
    existing = dict.fromkeys(counts, "train")  # 200 images all in train
    counts.update({f"new{i}": 10 for i in range(20)})  # 200 more images
    assignment = participant_split(counts, existing=existing)
    new = [assignment[f"new{i}"] for i in range(20)]
    assert new.count("val") == 7 and new.count("test") == 7  # 70 and 70 of 400 images (targets 72, 68)
    assert shares(assignment, counts) == pytest.approx([0.65, 0.175, 0.175])


def test_pinned_overrides_existing_and_moves_only_the_pinned():
    counts = {f"p{i}": 3 for i in range(30)}
    first = participant_split(counts)
    victim = next(code for code, split in first.items() if split == "train")
    counts["late"] = 4
    second = participant_split(counts, existing=first, pinned={victim: "test", "late": "val", "ghost": "val"})
    assert second[victim] == "test" and second["late"] == "val" and second["ghost"] == "val"
    assert all(second[code] == split for code, split in first.items() if code != victim)


def test_existing_participants_without_counts_are_kept():
    assert participant_split({"a": 2}, existing={"gone": "test"}) == {"a": "train", "gone": "test"}


def test_zero_ratio_split_gets_no_new_participants():
    counts = {f"p{i}": i % 5 for i in range(40)}  # including participants without images
    assignment = participant_split(counts, ratios=(0.8, 0.2, 0.0))
    assert "test" not in assignment.values()


@pytest.mark.parametrize("ratios", [(0.5, 0.5), (0.7, 0.2, 0.2), (-0.1, 0.6, 0.5), (float("nan"), 0.5, 0.5),
                                    "abc", None, (0.65, 0.18, 0.17, 0.0), (0.5, 0.5, 1e-5)])
def test_bad_ratios_raise(ratios):
    with pytest.raises(ValueError, match="ratios"):
        participant_split({"a": 1}, ratios=ratios)


def test_ratios_within_tolerance_are_accepted():
    assert check_ratios([0.6, 0.2, 0.2 + 5e-7]) == (0.6, 0.2, 0.2 + 5e-7)


@pytest.mark.parametrize("kwargs", [{"existing": {"a": "training"}}, {"pinned": {"a": None}},
                                    {"image_counts": {"a": -1}}, {"image_counts": {"a": 1.5}},
                                    {"image_counts": {"a": True}}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        participant_split(**{"image_counts": {"a": 1}, **kwargs})


def test_split_summary():
    summary = split_summary({"a": "train", "b": "train", "c": "test"}, {"a": 3, "b": 1, "c": 4})
    assert summary["train"] == {"participants": 2, "images": 4,
                                "participant_share": 2 / 3, "image_share": 0.5}
    assert summary["val"] == {"participants": 0, "images": 0, "participant_share": 0.0, "image_share": 0.0}
    assert summary["total"] == {"participants": 3, "images": 8}


# ---------------------------------------------------------------- perceptual hash

def photo(seed: int, size=(320, 240)) -> Image.Image:
    """A smooth random 'photo': blurred colour noise plus a few shapes."""
    rng = np.random.default_rng(seed)
    noise = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    low = noise.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(low)
    for _ in range(4):
        x, y = int(rng.integers(0, size[0] - 60)), int(rng.integers(0, size[1] - 60))
        draw.ellipse([x, y, x + int(rng.integers(20, 60)), y + int(rng.integers(20, 60))],
                     fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return low


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_phash_of_identical_images_is_equal_in_every_form():
    image = photo(1)
    h = perceptual_hash(image)
    assert 0 <= h < 2 ** 64
    assert perceptual_hash(photo(1)) == h == perceptual_hash(np.asarray(image))
    assert hamming_distance(h, perceptual_hash(image.convert("RGBA"))) == 0
    assert perceptual_hash(image.convert("L")) == h == perceptual_hash(np.asarray(image.convert("L")))


def test_phash_is_robust_to_re_encoding_brightness_and_scale():
    for seed in range(5):
        image = photo(seed)
        h = perceptual_hash(image)
        brighter = Image.fromarray(np.clip(np.asarray(image, np.int16) + 12, 0, 255).astype(np.uint8))
        assert hamming_distance(h, perceptual_hash(jpeg(brighter, 70))) <= 6
        assert hamming_distance(h, perceptual_hash(image.resize((160, 120)))) <= 6


def test_phash_of_unrelated_images_is_far():
    hashes = [perceptual_hash(photo(seed)) for seed in range(10, 20)]
    assert min(hamming_distance(a, b) for a, b in itertools.combinations(hashes, 2)) > 12


def test_phash_edge_cases():
    assert perceptual_hash(np.zeros((10, 10), np.uint8)) == 0
    assert perceptual_hash(np.full((50, 40), 200, np.uint8)) == 1 << 63  # flat: only the DC bit
    assert perceptual_hash(np.full((5, 5), 300.0)) == perceptual_hash(np.full((5, 5), 255, np.uint8))
    for bad in (np.zeros((0, 5), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros(5, np.uint8)):
        with pytest.raises(ValueError):
            perceptual_hash(bad)


def test_signed_form_round_trips():
    for h in (0, 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1):
        s = to_signed64(h)
        assert -2 ** 63 <= s < 2 ** 63 and from_signed64(s) == h
        assert hamming_distance(s, h) == 0


def test_near_duplicates_matches_brute_force():
    rng = random.Random(3)
    seeds = [rng.getrandbits(64) for _ in range(30)]
    hashes = [s ^ sum(1 << rng.randrange(64) for _ in range(rng.randrange(5)))  # clusters of near hashes
              for s in seeds for _ in range(4)]
    i, j, d = near_duplicates(hashes, max_distance=3, block=50)
    pairs = itertools.combinations(range(len(hashes)), 2)
    expected = {(a, b, hamming_distance(hashes[a], hashes[b])) for a, b in pairs
                if hamming_distance(hashes[a], hashes[b]) <= 3}
    assert set(zip(i.tolist(), j.tolist(), d.tolist())) == expected and len(i) == len(expected)
    a, b = hashes[:50], [to_signed64(h) for h in hashes[50:]]
    i, j, d = near_duplicates(a, b, max_distance=3)
    assert {(x, y) for x, y in zip(i.tolist(), j.tolist())} == {
        (x, y) for x in range(50) for y in range(len(b)) if hamming_distance(a[x], b[y]) <= 3}


# ---------------------------------------------------------------- leak check

def test_leak_check_finds_planted_duplicate_across_splits_only():
    rng = random.Random(5)
    hashes = {f"img{i}": (f"p{i}", SPLITS[i % 3], rng.getrandbits(64)) for i in range(3000)}
    original = photo(42)
    copy = jpeg(Image.fromarray(np.clip(np.asarray(original, np.int16) + 10, 0, 255).astype(np.uint8)), 75)
    hashes["orig"] = ("alice", "train", perceptual_hash(original))
    hashes["copy"] = ("bob", "test", to_signed64(perceptual_hash(copy)))    # signed form from a BIGINT
    hashes["same-split"] = ("carol", "train", perceptual_hash(original))    # within train: not a leak
    hashes["unassigned"] = ("dave", None, perceptual_hash(original))        # no split yet: skipped
    leaks = leak_check(hashes)
    assert [(leak.image_a, leak.image_b) for leak in leaks] == [("orig", "copy"), ("same-split", "copy")]
    assert leaks[0].split_a == "train" and leaks[0].split_b == "test"
    assert leaks[0].participant_a == "alice" and leaks[0].participant_b == "bob"
    assert leaks[0].distance <= 6
    assert leak_check(hashes, max_distance=-1) == []


def test_leak_check_scales_to_ten_thousand_images():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2 ** 63, 10_000, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    hashes = {i: (i, SPLITS[i % 3], int(v)) for i, v in enumerate(values)}
    hashes[10_000] = (-1, "val", int(values[0]) ^ 0b101)  # image 0 is in train
    leaks = leak_check(hashes)  # ~33 M pairs; well under a second
    assert [(leak.image_a, leak.image_b, leak.distance) for leak in leaks] == [(0, 10_000, 2)]
