"""Dataset statistics over the current labels: per split, participant and class; nail sizes;
label completeness, and how much of it is finished labels that annotators can complete (the
incomplete-labels queue, ``labeling.queue.is_incomplete``). Plain functions."""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from shapely.geometry import Polygon

from dataset.geometry import FINGER_NAMES, confirmed_labels, nail_is_complete, suggested_marks
from labeling.models import Annotation
from labeling.queue import is_incomplete

from .models import ParticipantSplit

# Nails are small objects: the share of the image a nail covers, binned (percent of image area).
SIZE_BINS = [0, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 100]


def dataset_stats() -> dict:
    splits = dict(ParticipantSplit.objects.values_list("participant_id", "split"))
    images = defaultdict(int)
    participants = defaultdict(set)
    classes = Counter()
    shares = []
    nails = complete = missing_finger = missing_landmarks = 0
    suggested = Counter()   # fields whose value is an unconfirmed suggestion (counted as missing above)
    incomplete = Counter()
    statuses = Counter()
    rows = Annotation.objects.values_list("status", "geometry", "image__participant_id", "image__width", "image__height").iterator(chunk_size=1000)
    for status, geometry, participant_id, width, height in rows:
        statuses[status] += 1
        split = splits.get(participant_id, "unassigned")
        images[split] += 1
        participants[split].add(participant_id)
        if is_incomplete(status, geometry):
            incomplete["images"] += 1
            incomplete["nails"] += sum(not nail_is_complete(nail) for nail in geometry["nails"])
        for nail in geometry.get("nails", []):
            nails += 1
            confirmed = confirmed_labels(nail)
            suggested.update(suggested_marks(nail).keys())
            finger = confirmed["finger"]
            classes[FINGER_NAMES.get(finger, "unknown finger")] += 1
            has_landmarks = confirmed["base"] is not None and confirmed["tip"] is not None
            missing_finger += finger is None
            missing_landmarks += not has_landmarks
            complete += finger is not None and has_landmarks
            if len(nail.get("polygon", [])) >= 3 and width and height:
                shares.append(100 * Polygon(nail["polygon"]).area / (width * height))
    histogram, _ = np.histogram(shares, bins=SIZE_BINS) if shares else (np.zeros(len(SIZE_BINS) - 1, int), None)
    return {
        "images_by_status": dict(statuses),
        "splits": {split: {"images": images[split], "participants": len(participants[split])} for split in sorted(images)},
        "classes": dict(classes.most_common()),
        "nails": nails,
        "completeness": {"complete": complete, "missing_finger": missing_finger, "missing_landmarks": missing_landmarks,
                         "suggested_finger": suggested["finger"], "suggested_landmarks": suggested["landmarks"]},
        # finished (submitted or accepted) labels with a nail lacking its finger or landmarks: the incomplete-labels
        # queue; the other incomplete nails are in drafts, still being labelled
        "incomplete": {"images": incomplete["images"], "nails": incomplete["nails"]},
        "nail_size_percent_of_image": {
            "bins": [f"{lo}-{hi}%" for lo, hi in zip(SIZE_BINS, SIZE_BINS[1:])],
            "counts": [int(c) for c in histogram],
            "median": round(float(np.median(shares)), 3) if shares else None,
        },
    }
