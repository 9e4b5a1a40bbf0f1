"""The demo set's finger classes and base/tip landmarks: the project's own labels for the shared nails-cc0 photos.

The shared set (``../shared/data/nails-cc0``) has nail polygons only. Every nail's finger and base/tip were
proposed by the label suggestions (``ml/label_suggestions.py``), then checked against the photo by eye and
corrected (docs/benchmarks.md, "complete_labels"). The result is ``demo/nails-cc0-labels.json`` beside this
file: per photo, per COCO annotation id of the shared file, the finger (1-10, or null where the photo does not
show which finger it is) and the base and tip points. It holds no polygon and no photo: those stay in
``../shared``, and :func:`merge_into_coco` joins the two into one COCO file that the ordinary importer reads.

Plain Python (no Django), so benches read it too.
"""
from __future__ import annotations

import json
from pathlib import Path

from dataset.formats.coco import UNKNOWN_CATEGORY_ID, categories, keypoints_of

DEMO_LABELS = Path(__file__).resolve().parent / "demo" / "nails-cc0-labels.json"


class DemoLabelsError(ValueError):
    """The label file does not fit the COCO file it is meant for (another version of the shared set)."""


def read_demo_labels(path: str | Path = DEMO_LABELS) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise DemoLabelsError(f"{path}: not a demo label file (needs an 'images' object)")
    return data


def merge_into_coco(coco: dict, labels: dict) -> dict:
    """A copy of ``coco`` whose nails carry the labels' fingers (as categories, unknown finger: the "nail"
    category) and base/tip (as keypoints), in the layout of the platform's COCO exporter.

    Every polygon annotation of the COCO file must have exactly one entry in the labels, matched by file name
    and annotation id, and no entry may name an annotation that is not there: otherwise
    :class:`DemoLabelsError` lists what does not match and nothing is merged."""
    files = {image["id"]: image["file_name"] for image in coco.get("images", [])}
    wanted: dict[tuple[str, int], dict] = {}
    for file_name, entry in labels["images"].items():
        for nail in entry.get("nails", []):
            wanted[(file_name, int(nail["annotation_id"]))] = nail
    problems, seen, annotations = [], set(), []
    for ann in coco.get("annotations", []):
        ann = dict(ann)
        if not ann.get("iscrowd"):
            key = (files.get(ann.get("image_id")), ann.get("id"))
            nail = wanted.get(key)
            if nail is None:
                problems.append(f"{key[0]}: annotation {key[1]} has no finger/landmark entry")
            else:
                seen.add(key)
                finger = nail.get("finger")
                ann["category_id"] = int(finger) if finger else UNKNOWN_CATEGORY_ID
                ann["keypoints"], ann["num_keypoints"] = keypoints_of(nail.get("base"), nail.get("tip"))
        annotations.append(ann)
    problems += [f"{file_name}: annotation {ann_id} is not in the COCO file" for file_name, ann_id in sorted(set(wanted) - seen)]
    if problems:
        raise DemoLabelsError("the demo labels do not fit this COCO file:\n" + "\n".join(problems[:20])
                              + (f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""))
    return {**coco, "categories": categories(), "annotations": annotations}


def write_merged_coco(coco_path: str | Path, out_dir: str | Path, labels: str | Path = DEMO_LABELS) -> Path:
    """``coco_path``'s COCO file merged with the label file ``labels`` (:func:`merge_into_coco`), written as
    ``out_dir/annotations.coco.json`` for the ordinary importer; returns that path. A label file that does not
    fit raises :class:`DemoLabelsError` before anything is written. The photos stay where they are: the caller
    points the importer at them."""
    merged = merge_into_coco(json.loads(Path(coco_path).read_text(encoding="utf-8")), read_demo_labels(labels))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "annotations.coco.json"
    target.write_text(json.dumps(merged), encoding="utf-8")
    return target
