"""Participant-grouped train / val / test split, stable as the dataset grows.

Plain Python + NumPy; this module must never import Django.

All images of a participant go to one split (the paper splits by participant:
941 / 254 / 243 images, about 65 / 18 / 17 %).

Algorithm (``participant_split``)
    1. Fixed participants: ``pinned`` (an admin's explicit choice) and
       ``existing`` (an earlier assignment); a pin overrides an existing split,
       which is the only way a participant ever moves.
    2. Targets: ``ratio[s] * T`` images for each split, T = all images (fixed
       and new participants together), so new participants fill what the fixed
       ones leave.
    3. New participants in a seeded random order: sorted by
       ``sha256(f"{seed}:{code}")`` (independent of library versions and of the
       other participants). Each goes to the split furthest below its image
       target (largest ``target - images``); ties, and participants without
       images, by the participant-count target (``ratio * participants -
       participants so far``), then train, val, test.
    4. Minimums: every split with a non-zero ratio that holds no participant
       with images after step 3 takes one NEW participant with images from a
       split that keeps at least one (the one whose move brings the image
       counts closest to their targets; ties by the seeded order). Splits are
       served largest ratio first, so with 3+ participants and non-zero ratios
       train, val and test are never empty (10, 1 and 1 images: 10 / 1 / 1;
       with 2 participants and the default ratios: train and val). Fixed
       participants never move, so a minimum can be out of reach.
    ``split_warnings`` turns an assignment into sentences for the snapshot's
    result and the command output: a non-zero-ratio split left without images
    (and why), image shares more than 5 percentage points off the ratios.
    The choice never looks at the participant's own size, so every split gets
    an unbiased sample of participants: with ~150-300 participants the image
    shares end within ~1 percentage point of the targets and the participant
    shares within ~3 (simulated). Placing the largest participants first would
    hit the image targets exactly but fills train with the heavy contributors
    (participant shares off by 13-27 points in the same simulations).
    Deterministic for a seed; independent of dict order.

Stability guarantee
    Every participant of ``existing`` keeps its split unless it is in ``pinned``;
    adding participants or images never moves anyone. Assign participants when
    their images are in (a split is fixed at first assignment, so a participant
    whose images arrive later can unbalance the shares; correct that with pins
    of NEW participants, not by moving old ones, or the test set leaks).
"""
from __future__ import annotations

import hashlib
import math
import operator
from typing import NamedTuple

from dataset.phash import near_duplicates, perceptual_hash  # noqa: F401  (perceptual_hash: re-export)

SPLITS = ("train", "val", "test")
DEFAULT_RATIOS = (0.65, 0.18, 0.17)


def check_ratios(ratios) -> tuple[float, float, float]:
    """Three finite non-negative numbers summing to 1 (within 1e-6), else ValueError."""
    try:
        values = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        raise ValueError(f"ratios must be three numbers for {SPLITS}, got {ratios!r}") from None
    if len(values) != 3:
        raise ValueError(f"ratios must be three numbers for {SPLITS}, got {len(values)}")
    if not all(math.isfinite(r) and r >= 0 for r in values):
        raise ValueError(f"ratios must be finite and non-negative, got {values}")
    if abs(sum(values) - 1) > 1e-6:
        raise ValueError(f"ratios must sum to 1, got {values} (sum {sum(values)})")
    return values


def _check_assignment(mapping, name: str) -> dict:
    mapping = dict(mapping or {})
    bad = {code: split for code, split in mapping.items() if split not in SPLITS}
    if bad:
        code, split = next(iter(bad.items()))
        raise ValueError(f"{name}: split must be one of {SPLITS}, got {split!r} for {code!r}")
    return mapping


def _check_counts(image_counts) -> dict:
    counts = {}
    for code, n in dict(image_counts).items():
        try:
            counts[code] = operator.index(n)
        except TypeError:
            raise ValueError(f"image count of {code!r} must be an integer, got {n!r}") from None
        if isinstance(n, bool) or counts[code] < 0:
            raise ValueError(f"image count of {code!r} must be a non-negative integer, got {n!r}")
    return counts


def _order_key(seed, code) -> bytes:
    return hashlib.sha256(f"{seed}:{code}".encode()).digest()


def participant_split(image_counts: dict[str, int], ratios=DEFAULT_RATIOS, seed=0,
                      existing: dict[str, str] | None = None,
                      pinned: dict[str, str] | None = None) -> dict[str, str]:
    """Participant code -> "train" | "val" | "test" for every participant of
    ``image_counts``, ``existing`` and ``pinned`` (see the module doc)."""
    ratios = check_ratios(ratios)
    counts = _check_counts(image_counts)
    fixed = {**_check_assignment(existing, "existing"), **_check_assignment(pinned, "pinned")}
    new = [code for code in counts if code not in fixed]
    total_images = sum(counts.values())
    total_people = len(counts.keys() | fixed.keys())
    images = dict.fromkeys(SPLITS, 0)
    people = dict.fromkeys(SPLITS, 0)
    for code, split in fixed.items():
        images[split] += counts.get(code, 0)
        people[split] += 1

    result = dict(fixed)
    for code in sorted(new, key=lambda c: _order_key(seed, c)):
        gaps = [(ratio * total_images - images[split], ratio * total_people - people[split], -i)
                for i, (split, ratio) in enumerate(zip(SPLITS, ratios))]  # -i: train first on ties
        if not counts[code]:
            gaps = [gap[1:] for gap in gaps]
        split = SPLITS[-max(gaps)[-1]]
        result[code] = split
        images[split] += counts[code]
        people[split] += 1
    _fill_empty_splits(result, counts, ratios, seed, movable=set(new))
    return dict(sorted(result.items(), key=lambda item: str(item[0])))


def _fill_empty_splits(result: dict, counts: dict, ratios, seed, movable: set) -> None:
    """Step 4 of the module doc, in place: a non-zero-ratio split without images takes a movable participant."""
    holders = {split: [code for code, s in result.items() if s == split and counts.get(code, 0) > 0] for split in SPLITS}
    images = {split: sum(counts[code] for code in holders[split]) for split in SPLITS}
    targets = {split: ratio * sum(images.values()) for split, ratio in zip(SPLITS, ratios)}
    wanting = sorted((split for split, ratio in zip(SPLITS, ratios) if ratio > 0 and not holders[split]),
                     key=lambda split: (-ratios[SPLITS.index(split)], SPLITS.index(split)))
    for split in wanting:
        candidates = [code for source in SPLITS if source != split for code in holders[source]
                      if code in movable and (len(holders[source]) > 1 or ratios[SPLITS.index(source)] == 0)]
        if not candidates:
            continue

        def error_after_move(code, split=split):
            moved = {**images, result[code]: images[result[code]] - counts[code], split: images[split] + counts[code]}
            return sum((moved[s] - targets[s]) ** 2 for s in SPLITS)

        code = min(candidates, key=lambda c: (error_after_move(c), _order_key(seed, c)))
        source = result[code]
        holders[source].remove(code)
        holders[split].append(code)
        images[source] -= counts[code]
        images[split] += counts[code]
        result[code] = split


def split_summary(assignment: dict[str, str], image_counts: dict[str, int]) -> dict:
    """Per split: participants, images and their shares; plus the totals under "total"."""
    assignment = _check_assignment(assignment, "assignment")
    summary = {split: {"participants": 0, "images": 0} for split in SPLITS}
    for code, split in assignment.items():
        summary[split]["participants"] += 1
        summary[split]["images"] += int(image_counts.get(code, 0))
    people = sum(s["participants"] for s in summary.values())
    images = sum(s["images"] for s in summary.values())
    for s in summary.values():
        s["participant_share"] = s["participants"] / people if people else 0.0
        s["image_share"] = s["images"] / images if images else 0.0
    summary["total"] = {"participants": people, "images": images}
    return summary


SHARE_TOLERANCE = 0.05  # an image share further than this from its ratio is reported


def split_warnings(assignment: dict[str, str], image_counts: dict[str, int], ratios=DEFAULT_RATIOS,
                   fixed=()) -> list[str]:
    """Plain sentences on where ``assignment`` misses ``ratios``: each split with a non-zero ratio but no images,
    then one line when an image share is more than ``SHARE_TOLERANCE`` from its ratio. ``fixed``: the codes that
    could not move (existing or pinned), named in the reason when they are why a split stayed empty."""
    ratios = check_ratios(ratios)
    assignment = _check_assignment(assignment, "assignment")
    counts = _check_counts(image_counts)
    summary = split_summary(assignment, counts)
    if not summary["total"]["images"]:
        return []
    with_images = [code for code in assignment if counts.get(code, 0) > 0]
    people = f"{len(with_images)} participant{'s' * (len(with_images) != 1)} with images"
    needed = sum(1 for ratio in ratios if ratio > 0)
    warnings = []
    for split, ratio in zip(SPLITS, ratios):
        if ratio > 0 and not summary[split]["images"]:
            stuck = set(fixed) & set(with_images)
            if len(with_images) < needed:
                why = f"only {people} for {needed} splits with a non-zero ratio"
            elif stuck:
                why = (f"{len(stuck)} of the {people} keep the split they already have (earlier snapshots or pins) "
                       "and no other could move without emptying its split; only a pin moves a participant")
            else:
                why = "no participant was put there"
            warnings.append(f"{split} gets no images although its ratio is {ratio:.2f}: {why}")
    shares = [summary[split]["image_share"] for split in SPLITS]
    if any(abs(share - ratio) > SHARE_TOLERANCE for share, ratio in zip(shares, ratios)):
        warnings.append("image shares " + " / ".join(f"{split} {share:.1%}" for split, share in zip(SPLITS, shares))
                        + " miss the ratios " + " / ".join(f"{ratio:.1%}" for ratio in ratios)
                        + f" by more than {SHARE_TOLERANCE * 100:.0f} percentage points: too few participants ({people})"
                        " or too uneven in size")
    return warnings


class Leak(NamedTuple):
    """Two near-duplicate images in different splits."""
    image_a: object
    image_b: object
    split_a: str
    split_b: str
    participant_a: object
    participant_b: object
    distance: int


def leak_check(hashes: dict, max_distance: int = 6) -> list[Leak]:
    """Near-duplicate images across DIFFERENT splits, closest first.

    ``hashes``: image id -> (participant, split, phash) with phash a 64-bit
    perceptual hash (``dataset.phash.perceptual_hash``; signed or unsigned
    form). Images whose split is None are skipped. Pairs within one split are
    not reported. Vectorised per pair of splits (XOR + popcount): 10 000 images
    (~33 million cross-split pairs) take ~0.2-0.4 s.
    """
    groups: dict = {}
    for image, (participant, split, phash) in hashes.items():
        if split is not None:
            groups.setdefault(split, []).append((image, participant, phash))
    names = sorted(groups, key=lambda s: (SPLITS.index(s) if s in SPLITS else len(SPLITS), str(s)))
    leaks = []
    for a, name_a in enumerate(names):
        for name_b in names[a + 1:]:
            ga, gb = groups[name_a], groups[name_b]
            for i, j, d in zip(*near_duplicates([g[2] for g in ga], [g[2] for g in gb], max_distance)):
                leaks.append(Leak(ga[i][0], gb[j][0], name_a, name_b, ga[i][1], gb[j][1], int(d)))
    leaks.sort(key=lambda leak: leak.distance)  # stable: ties keep split and input order
    return leaks

