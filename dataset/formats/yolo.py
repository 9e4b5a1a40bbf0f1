"""Ultralytics YOLO segmentation export.

Layout::

    data.yaml
    images/<split>/<file_name>
    labels/<split>/<stem>.txt     one line per nail: "cls x1 y1 x2 y2 ..." normalised to [0, 1]

Class ids: 0..9 = fingers 1..10 (left thumb .. right little), 10 = nail with unknown
finger. YOLO has no ignore regions and no landmarks: both are left out (counted
in the summary). An image without nails gets an empty label file (a background image).
"""
from __future__ import annotations

import json

from dataset.geometry import FINGER_NAMES

from .base import (
    FINGER_LABELS, SPLITS, UNKNOWN_LABEL, FolderTarget, FormatError, check_meta, check_record, exporter, stem_of,
)

UNKNOWN_YOLO_CLASS = 10
DECIMALS = 6


def yolo_names() -> dict[int, str]:
    names = {k - 1: FINGER_LABELS[k] for k in sorted(FINGER_NAMES)}
    names[UNKNOWN_YOLO_CLASS] = UNKNOWN_LABEL
    return names


def yolo_class(finger) -> int:
    return finger - 1 if finger in FINGER_NAMES else UNKNOWN_YOLO_CLASS


def _norm(value: float, size: int) -> str:
    return f"{min(max(value / size, 0.0), 1.0):.{DECIMALS}f}"


def label_lines(geometry: dict, width: int, height: int) -> list[str]:
    """The YOLO segmentation lines of one image (coordinates clamped to [0, 1])."""
    lines = []
    for nail in geometry.get("nails") or []:
        coords = " ".join(f"{_norm(x, width)} {_norm(y, height)}" for x, y in nail["polygon"])
        lines.append(f"{yolo_class(nail.get('finger'))} {coords}")
    return lines


def data_yaml(meta: dict, root: str | None) -> str:
    def q(value) -> str:  # a JSON string is a valid YAML double-quoted scalar
        return json.dumps(str(value))
    lines = [
        f"# NailSet snapshot {q(meta['snapshot'])}, content hash {q(meta['content_hash'])}, created {q(meta['created_at'])}",
        "# Ultralytics YOLO segmentation: class 0-9 = fingers 1-10, 10 = nail (finger unknown).",
    ]
    if root:
        lines.append(f"path: {q(root)}")
    else:
        lines.append("# path: omitted, so Ultralytics uses the folder holding this file; set it to that folder's")
        lines.append("#       absolute path if your Ultralytics version resolves relative paths elsewhere.")
    lines += [f"{split}: images/{split}" for split in SPLITS]
    lines.append(f"nc: {len(yolo_names())}")
    lines.append("names:")
    lines += [f"  {k}: {q(v)}" for k, v in yolo_names().items()]
    return "\n".join(lines) + "\n"


@exporter("yolo", "zip")
def export_yolo(records, target, meta) -> dict:
    """Ultralytics YOLO segmentation: normalised polygons per image and data.yaml."""
    check_meta(meta)
    seen: set[str] = set()
    stems: set[str] = set()
    summary = {"images": 0, "nails": 0, "splits": dict.fromkeys(SPLITS, 0),
               "ignore_regions_dropped": 0, "landmarks_dropped": 0}
    for record in records:
        check_record(record, seen)
        stem, split = stem_of(record.file_name), record.split
        if stem in stems:
            raise FormatError(f"image {record.image_id}: another image's file name has the stem {stem!r}")
        stems.add(stem)
        target.copy_file(f"images/{split}/{record.file_name}", record.source_path)
        lines = label_lines(record.geometry, record.width, record.height)
        target.write_text(f"labels/{split}/{stem}.txt", "".join(line + "\n" for line in lines))
        nails = record.geometry.get("nails") or []
        summary["images"] += 1
        summary["splits"][split] += 1
        summary["nails"] += len(lines)
        summary["ignore_regions_dropped"] += len(record.geometry.get("ignore") or [])
        summary["landmarks_dropped"] += sum(1 for n in nails if n.get("base") is not None)
    root = target.root if isinstance(target, FolderTarget) else None
    target.write_text("data.yaml", data_yaml(meta, root))
    return summary
