"""COCO instance segmentation with base/tip keypoints: exporter and importer.

Export layout (one COCO file per split, images alongside)::

    annotations/instances_train.json   annotations/instances_val.json   annotations/instances_test.json
    images/train/<file_name>           images/val/<file_name>           images/test/<file_name>

Categories 1..10 are the fingers ("left_thumb" .. "right_little"), 11 is "nail"
(finger unknown); all have ``keypoints: ["base", "tip"]`` and ``skeleton: [[1, 2]]``.
A nail whose finger or base/tip is an unconfirmed suggestion (``dataset/geometry.py``) says so in
``attributes: {"suggested": ["finger", "landmarks"], "suggestion_confidence": {"finger": 0.8, ...}}``;
the importer reads it back.
Ignore regions are ``iscrowd: 1`` annotations of category 11 with
``attributes: {"ignore": true}`` (COCO's own "ignore this area" convention); the
importer turns every crowd annotation back into an ignore region.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np

from dataset.geometry import FINGER_NAMES, SUGGESTED_FIELDS, is_confidence, suggested_marks

from .errors import FormatError, NotThisFormat
from .files import ImageFinder, read_json, walk_files
from .labels import FINGER_LABELS, IGNORE, NAIL, UNKNOWN_LABEL, normalize_label, resolve_label
from .records import SPLITS, ImportCollector, ImportedImage, check_meta, check_record, positive_size, read_identity
from .registry import exporter, importer
from .repair import finish_geometry, finite_point, flat_to_points, make_nail, shoelace_area
from .targets import JsonArraySpool

UNKNOWN_CATEGORY_ID = 11
KEYPOINT_NAMES = ["base", "tip"]
FORMAT_VERSION = 1


def categories() -> list[dict]:
    cats = [{"id": k, "name": FINGER_LABELS[k], "supercategory": "nail"} for k in sorted(FINGER_NAMES)]
    cats.append({"id": UNKNOWN_CATEGORY_ID, "name": UNKNOWN_LABEL, "supercategory": "nail"})
    for cat in cats:
        cat.update(keypoints=list(KEYPOINT_NAMES), skeleton=[[1, 2]])
    return cats


def _bbox(points) -> list[float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def _area(points) -> float:
    from shapely.geometry import Polygon
    return float(Polygon(points).area)


def keypoints_of(base, tip) -> tuple[list, int]:
    """``(keypoints, num_keypoints)`` of a nail's base and tip in COCO's layout (both absent: all zeros)."""
    if base is not None and tip is not None:
        return [float(base[0]), float(base[1]), 2, float(tip[0]), float(tip[1]), 2], 2
    return [0, 0, 0, 0, 0, 0], 0


def nail_to_annotation(nail: dict, ann_id: int, image_id: int) -> dict:
    """One nail of a (valid) geometry as a COCO annotation."""
    polygon = [list(map(float, p)) for p in nail["polygon"]]
    finger = nail.get("finger")
    keypoints, visible = keypoints_of(nail.get("base"), nail.get("tip"))
    ann = {"id": ann_id, "image_id": image_id, "category_id": finger if finger in FINGER_NAMES else UNKNOWN_CATEGORY_ID,
           "segmentation": [[c for p in polygon for c in p]], "area": _area(polygon), "bbox": _bbox(polygon),
           "iscrowd": 0, "keypoints": keypoints, "num_keypoints": visible}
    attributes = {"nail_id": nail["id"]} if isinstance(nail.get("id"), str) else {}
    marks = suggested_marks(nail)
    if marks:  # unconfirmed suggestions (dataset/geometry.py): which fields, and their confidence
        attributes["suggested"] = [f for f in SUGGESTED_FIELDS if f in marks]
        attributes["suggestion_confidence"] = {f: marks[f] for f in SUGGESTED_FIELDS if f in marks}
    if attributes:
        ann["attributes"] = attributes
    return ann


def _suggested(attributes: dict, finger, base, ref: str, problem) -> dict | None | bool:
    """The nail's ``suggested`` marks from an annotation's ``attributes`` (as ``nail_to_annotation`` writes
    them): None when it has none, False (a problem: the nail is left out, never imported as confirmed) when
    a mark is not a known field with a confidence in [0, 1] on a set field."""
    names = attributes.get("suggested")
    if names is None:
        return None
    confidence = attributes.get("suggestion_confidence")
    confidence = confidence if isinstance(confidence, dict) else {}
    if not isinstance(names, list):
        problem(f"{ref}: attributes.suggested must be a list of field names (finger, landmarks); nail left out")
        return False
    marks = {}
    for name in names:
        value = confidence.get(name) if isinstance(name, str) else None
        is_set = finger is not None if name == "finger" else base is not None
        if name not in SUGGESTED_FIELDS or not is_confidence(value) or not is_set:
            problem(f"{ref}: suggested {name!r} needs a set field and a confidence in [0, 1] in "
                    f"attributes.suggestion_confidence, got {value!r}; nail left out")
            return False
        marks[name] = float(value)
    return marks


def ignore_to_annotation(region, ann_id: int, image_id: int) -> dict:
    polygon = [list(map(float, p)) for p in region]
    return {"id": ann_id, "image_id": image_id, "category_id": UNKNOWN_CATEGORY_ID,
            "segmentation": [[c for p in polygon for c in p]], "area": _area(polygon), "bbox": _bbox(polygon),
            "iscrowd": 1, "keypoints": [0, 0, 0, 0, 0, 0], "num_keypoints": 0, "attributes": {"ignore": True}}


@exporter("coco", "zip", title="COCO")
def export_coco(records, target, meta) -> dict:
    """COCO instance segmentation + base/tip keypoints, one JSON per split, images alongside."""
    check_meta(meta)
    spools = {split: (JsonArraySpool(), JsonArraySpool()) for split in SPLITS}
    next_ann = dict.fromkeys(SPLITS, 1)
    seen: set[str] = set()
    summary = {"images": 0, "annotations": 0, "ignore_regions": 0, "splits": dict.fromkeys(SPLITS, 0)}
    try:
        for record in records:
            check_record(record, seen)
            split = record.split
            target.copy_file(f"images/{split}/{record.file_name}", record.source_path)
            images, annotations = spools[split]
            images.append({"id": record.image_id, "file_name": record.file_name, "width": record.width,
                           "height": record.height, **record.identity(), "sha256": record.sha256})
            for nail in record.geometry.get("nails") or []:
                annotations.append(nail_to_annotation(nail, next_ann[split], record.image_id))
                next_ann[split] += 1
                summary["annotations"] += 1
            for region in record.geometry.get("ignore") or []:
                annotations.append(ignore_to_annotation(region, next_ann[split], record.image_id))
                next_ann[split] += 1
                summary["ignore_regions"] += 1
            summary["images"] += 1
            summary["splits"][split] += 1
        for split in SPLITS:
            images, annotations = spools[split]
            info = {"description": f"NailSet snapshot {meta['snapshot']} ({split})", "version": str(FORMAT_VERSION),
                    "date_created": meta["created_at"], "snapshot": meta["snapshot"],
                    "content_hash": meta["content_hash"], "split": split, "format": "nailset-coco",
                    "format_version": FORMAT_VERSION}
            head = json.dumps({"info": info, "licenses": [], "categories": categories()}, ensure_ascii=False)
            with target.open(f"annotations/instances_{split}.json", len(head) + images.size() + annotations.size()) as out:
                out.write(head[:-1].encode("utf-8") + b', "images": ')
                images.write_to(out)
                out.write(b', "annotations": ')
                annotations.write_to(out)
                out.write(b"}\n")
    finally:
        for pair in spools.values():
            for spool in pair:
                spool.close()
    return summary


# --------------------------------------------------------------------------- RLE

def rle_counts_from_string(text) -> list[int]:
    """Decode COCO's compressed RLE string (pycocotools' rleFrString) into run lengths."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    counts: list[int] = []
    p, n = 0, len(text)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise FormatError("truncated RLE string")
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_decode(rle: dict) -> np.ndarray:
    """COCO RLE ({"size": [h, w], "counts": list or string}) -> uint8 H x W mask (0/1)."""
    try:
        height, width = (int(v) for v in rle["size"])
        counts = rle["counts"]
        counts = rle_counts_from_string(counts) if isinstance(counts, (str, bytes)) else [int(c) for c in counts]
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"malformed RLE segmentation: {exc}") from None
    if height <= 0 or width <= 0 or any(c < 0 for c in counts) or sum(counts) != height * width:
        raise FormatError("malformed RLE segmentation: run lengths do not cover the mask")
    values = np.arange(len(counts), dtype=np.int64) % 2
    flat = np.repeat(values.astype(np.uint8), counts)
    return np.ascontiguousarray(flat.reshape(width, height).T)  # column-major


def mask_to_polygons(mask: np.ndarray) -> list[list[list[float]]]:
    """Outer contours of a binary mask as polygons through boundary pixel centres, largest first."""
    import cv2
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = [[[float(x) + 0.5, float(y) + 0.5] for x, y in c.reshape(-1, 2)] for c in contours if len(c) >= 3]
    polygons = [p for p in polygons if shoelace_area(p) > 0]
    return sorted(polygons, key=shoelace_area, reverse=True)


# --------------------------------------------------------------------------- import

def _segmentation_polygons(segm, ann_ref: str, warn, problem) -> list[list[list[float]]] | None:
    """All polygons of one annotation's segmentation, largest first (None: unusable). ``problem`` is told
    what was left out, ``warn`` what was converted."""
    if isinstance(segm, list):
        polygons = []
        for flat in segm:
            points = flat_to_points(flat)
            if points is None or len(points) < 3:
                problem(f"{ann_ref}: a malformed polygon (odd length, non-numbers or under 3 points) was skipped")
                continue
            polygons.append(points)
        return sorted(polygons, key=shoelace_area, reverse=True) or None
    if isinstance(segm, dict):
        try:
            mask = rle_decode(segm)
        except FormatError as exc:
            problem(f"{ann_ref}: {exc}; skipped")
            return None
        polygons = mask_to_polygons(mask)
        if not polygons:
            problem(f"{ann_ref}: the RLE mask is empty or too thin for a polygon; skipped")
            return None
        warn(f"{ann_ref}: RLE mask converted to a polygon (traced through boundary pixel centres)")
        return polygons
    problem(f"{ann_ref}: no usable segmentation; skipped")
    return None


def _keypoint_slots(category: dict) -> tuple[int | None, int | None]:
    names = category.get("keypoints")
    if not isinstance(names, list):
        return 0, 1  # no names: assume [base, tip] (NailSet's order)
    found = {}
    for index, name in enumerate(names):
        key = normalize_label(name)
        for kind in ("base", "tip"):
            if key in (kind, f"nail_{kind}", f"{kind}_point"):
                found.setdefault(kind, index)
    return found.get("base"), found.get("tip")


def _keypoint(values, slot):
    if slot is None or not isinstance(values, list) or len(values) < 3 * slot + 3:
        return None
    x, y, v = values[3 * slot:3 * slot + 3]
    if not isinstance(v, (int, float)) or v <= 0:
        return None
    return finite_point([x, y])


def _parse_coco_file(path: str, data: dict, label_map: dict, collect: ImportCollector, finder: ImageFinder,
                     repair: bool) -> None:
    name = os.path.basename(path)
    if not isinstance(data.get("images"), list) or not isinstance(data.get("categories"), list):
        raise NotThisFormat(f"{name} is not a COCO instances file (needs images and categories lists)")
    annotations = data.get("annotations") or []
    if not isinstance(annotations, list):
        raise FormatError(f"{name}: 'annotations' must be a list")
    cats = {}
    for cat in data["categories"]:
        if isinstance(cat, dict) and "id" in cat:
            kind, finger = resolve_label(cat.get("name", ""), label_map)
            cats[cat["id"]] = (str(cat.get("name", "")), kind, finger, _keypoint_slots(cat))
    split = (data.get("info") or {}).get("split") if isinstance(data.get("info"), dict) else None
    match = re.match(r"instances_(\w+)\.json$", name)
    extra = tuple(s for s in {split if isinstance(split, str) else None, match and match[1]} if s)
    extra = tuple(os.path.join("images", s) for s in extra) + extra

    by_image: dict = {}
    images = {}
    for entry in data["images"]:
        if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("file_name"), str):
            collect.problem(f"{name}: an image entry without id or file_name was skipped")
            continue
        image = ImportedImage(file_name=entry["file_name"], named_path=entry["file_name"], width=positive_size(entry.get("width")),
                              height=positive_size(entry.get("height")), geometry={"nails": [], "ignore": []})
        image.image_path = finder.find(image.file_name, os.path.dirname(path), extra)
        read_identity(image, entry, lambda message, image=image: collect.warn(message, image))
        images[entry["id"]] = image
        by_image[entry["id"]] = []
    for ann in annotations:
        if not isinstance(ann, dict) or ann.get("image_id") not in by_image:
            collect.problem(f"{name}: annotation {ann.get('id') if isinstance(ann, dict) else ann!r} "
                            f"refers to no listed image; skipped")
            continue
        by_image[ann["image_id"]].append(ann)

    for image_id, image in images.items():
        nails, ignore = [], []
        warn = lambda message, image=image: collect.warn(message, image)  # noqa: E731
        problem = lambda message, image=image: collect.problem(message, image)  # noqa: E731
        for ann in by_image[image_id]:
            ref = f"annotation {ann.get('id')}"
            cat = cats.get(ann.get("category_id"))
            if cat is None:
                collect.unknown(f"category_id {ann.get('category_id')}", image)
                continue
            label, kind, finger, (base_slot, tip_slot) = cat
            attributes = ann.get("attributes") if isinstance(ann.get("attributes"), dict) else {}
            # crowd regions of a nail category (COCO's "ignore this area"), NailSet's ignore attribute, an "ignore" label
            crowd = (kind == IGNORE or attributes.get("ignore") is True
                     or (kind == NAIL and ann.get("iscrowd") in (1, True)))
            if not crowd and kind != NAIL:
                collect.unknown(label, image)
                continue
            polygons = _segmentation_polygons(ann.get("segmentation"), ref, warn, problem)
            if polygons is None:
                continue
            if crowd:
                ignore.extend(polygons)
                continue
            if len(polygons) > 1:  # a speck beside the nail (a mask's stray pixels) is noise; a real second part is not
                dropped = sum(shoelace_area(p) for p in polygons[1:])
                (warn if dropped <= 0.1 * (dropped + shoelace_area(polygons[0])) else problem)(
                    f"{ref}: {len(polygons)} polygons; the largest was kept as the nail, "
                    f"{len(polygons) - 1} smaller part(s) dropped ({dropped:g} px)")
            values = ann.get("keypoints")
            base, tip = _keypoint(values, base_slot), _keypoint(values, tip_slot)
            if (base is None) != (tip is None):
                problem(f"{ref}: only the {'base' if tip is None else 'tip'} keypoint is visible (a nail has both "
                        f"or neither); dropped")
                base = tip = None
            marks = _suggested(attributes, finger, base, ref, problem)
            if marks is False:
                continue
            nails.append(make_nail(polygons[0], finger, base, tip, attributes.get("nail_id"), marks))
        image.geometry = finish_geometry(nails, ignore, warn, repair)
        collect.add(image)


@importer("coco", "json")
def import_coco(path: str, label_map: dict, *, repair: bool = True):
    """COCO instances JSON (a file, or every COCO JSON in a folder): polygons or RLE, optional base/tip keypoints."""
    collect = ImportCollector()
    if os.path.isdir(path):
        root = path
        found = []
        for candidate in walk_files(path, (".json",)):
            data = read_json(candidate)
            if isinstance(data, dict) and isinstance(data.get("images"), list) and "categories" in data:
                found.append((candidate, data))
            del data
        if not found:
            raise FormatError(f"no COCO instances JSON found in {os.path.basename(path) or path}")
    else:
        root = os.path.dirname(os.path.abspath(path))
        data = read_json(path)
        if not isinstance(data, dict):
            raise NotThisFormat(f"{os.path.basename(path)} is not a COCO instances file")
        found = [(path, data)]
    finder = ImageFinder(root)
    for file_path, data in found:
        _parse_coco_file(file_path, data, label_map, collect, finder, repair)
    return collect.finish()
