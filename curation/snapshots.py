"""Building snapshots: eligible labels -> stable participant splits -> frozen items, hash, counts, leaks.

Plain functions over the ORM; the split logic itself is ``dataset.splits`` (no Django).
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter

from django.db import transaction

from dataset.phash import perceptual_hash
from dataset.splits import DEFAULT_RATIOS, leak_check, participant_split, split_warnings
from labeling.models import Annotation, Image, Participant

from .models import SPLITS, ParticipantSplit, Snapshot, SnapshotItem

class SnapshotError(ValueError):
    """The snapshot cannot be built as asked; the message says why."""


def eligible_annotations(include_submitted: bool = False):
    statuses = [Annotation.Status.ACCEPTED] + ([Annotation.Status.SUBMITTED] if include_submitted else [])
    return (Annotation.objects.filter(status__in=statuses, image__participant__erased_at__isnull=True)
            .select_related("image", "image__participant").order_by("image_id"))


def content_hash(items) -> str:
    """sha256 over (image sha256, participant, split, labels) of every item, in a canonical order."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: (i.image_sha256, i.participant_id)):
        line = json.dumps([item.image_sha256, item.participant.code, item.split, item.geometry], sort_keys=True, separators=(",", ":"))
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def snapshot_counts(items) -> dict:
    per_split = {split: {"images": 0, "participants": set(), "nails": 0, "nails_with_finger": 0, "nails_with_landmarks": 0}
                 for split in SPLITS}
    per_class = {split: Counter() for split in SPLITS}
    for item in items:
        bucket = per_split[item.split]
        bucket["images"] += 1
        bucket["participants"].add(item.participant_id)
        for nail in item.geometry["nails"]:
            bucket["nails"] += 1
            bucket["nails_with_finger"] += nail.get("finger") is not None
            bucket["nails_with_landmarks"] += nail.get("base") is not None
            per_class[item.split][str(nail.get("finger") or "unknown")] += 1
    total_images = sum(b["images"] for b in per_split.values()) or 1
    return {
        "splits": {split: {**{k: v for k, v in b.items() if k != "participants"}, "participants": len(b["participants"]),
                           "image_share": round(b["images"] / total_images, 4)} for split, b in per_split.items()},
        "classes": {split: dict(sorted(counter.items())) for split, counter in per_class.items()},
        "images": sum(b["images"] for b in per_split.values()),
    }


def image_phash(image: Image) -> int:
    """The stored perceptual hash, computed (and stored) for images ingested before it existed."""
    if not image.phash:
        from PIL import Image as PILImage

        with image.file.open("rb") as fh:
            picture = PILImage.open(fh).convert("RGB")
            picture.thumbnail((256, 256))
        image.phash = f"{perceptual_hash(picture):016x}"
        Image.objects.filter(pk=image.pk).update(phash=image.phash)
    return int(image.phash, 16)


def assign_splits(participant_counts: dict[str, int], ratios, seed: int, snapshot_name: str,
                  warn=lambda message: None) -> dict[str, str]:
    """Stable assignment: existing participants keep their split, pins win, new ones are balanced; each way it
    misses the ratios (an empty split, shares far off) goes to ``warn``."""
    rows = {row.participant.code: row for row in ParticipantSplit.objects.select_related("participant")}
    existing = {code: row.split for code, row in rows.items() if not row.pinned}
    pinned = {code: row.split for code, row in rows.items() if row.pinned}
    assignment = participant_split(participant_counts, ratios=tuple(ratios), seed=seed, existing=existing, pinned=pinned)
    new = [code for code in participant_counts if code not in rows]
    participants = {p.code: p for p in Participant.objects.filter(code__in=new)}
    ParticipantSplit.objects.bulk_create([
        ParticipantSplit(participant=participants[code], split=assignment[code], assigned_by_snapshot=snapshot_name) for code in new
    ])
    in_snapshot = {code: assignment[code] for code in participant_counts}  # erased or unlabelled participants hold no images
    for message in split_warnings(in_snapshot, participant_counts, ratios, fixed=rows.keys()):
        warn(message)
    return assignment


def pin_participant(participant: Participant, split: str) -> ParticipantSplit:
    if split not in SPLITS:
        raise SnapshotError(f"split must be one of {', '.join(SPLITS)}")
    row, _ = ParticipantSplit.objects.update_or_create(participant=participant, defaults={"split": split, "pinned": True})
    return row


def build_snapshot(name: str, *, ratios=DEFAULT_RATIOS, seed: int = 0, include_submitted: bool = False, user=None,
                   job=None, progress=lambda fraction, message=None: None, warn=lambda message: None) -> Snapshot:
    """Freeze the eligible labels into a new snapshot, all or nothing; ``warn`` gets each way the splits miss
    the ratios (``dataset.splits.split_warnings``)."""
    if Snapshot.objects.filter(name=name).exists():
        raise SnapshotError(f"a snapshot named {name!r} exists already; snapshots never change, pick a new name")
    annotations = list(eligible_annotations(include_submitted))
    if not annotations:
        kinds = "accepted or submitted" if include_submitted else "accepted"
        raise SnapshotError(f"there are no {kinds} annotations to put in a snapshot")
    progress(0.1, f"{len(annotations)} labelled images")
    with transaction.atomic():
        counts = Counter(a.image.participant.code for a in annotations)
        assignment = assign_splits(counts, ratios, seed, name, warn=warn)
        progress(0.2, "splits assigned")
        snapshot = Snapshot.objects.create(name=name, include_submitted=include_submitted, ratios=list(ratios), seed=seed,
                                           created_by=user if getattr(user, "pk", None) else None, job=job)
        items = [SnapshotItem(snapshot=snapshot, image=a.image, participant=a.image.participant, split=assignment[a.image.participant.code],
                              image_sha256=a.image.sha256, width=a.image.width, height=a.image.height,
                              annotation_version=a.version, annotation_status=a.status, geometry=a.geometry)
                 for a in annotations]
        SnapshotItem.objects.bulk_create(items, batch_size=1000)
        progress(0.5, "items written")
        hashes = {}
        for number, item in enumerate(items, start=1):
            hashes[item.image.pk] = (item.participant.code, item.split, image_phash(item.image))
            if number % 100 == 0:
                progress(0.5 + 0.4 * number / len(items), f"hashed {number} of {len(items)} images")
        leaks = [leak._asdict() for leak in leak_check(hashes)]
        Snapshot.objects.filter(pk=snapshot.pk).update(
            status=Snapshot.Status.READY, content_hash=content_hash(items), counts=snapshot_counts(items), leaks=leaks,
        )
    snapshot.refresh_from_db()
    progress(1.0, f"snapshot {name}: {snapshot.counts['images']} images, {len(leaks)} possible leaks")
    return snapshot
