"""LabelMe JSON import (one JSON per image, or a folder of them).

* ``polygon`` shapes (and shapes without ``shape_type``, as old LabelMe writes them):
  the label goes through the label map -> a nail with that finger class; an
  ignore label ("ignore", "crowd", ...) -> an ignore region; anything else is an
  unknown label (reported, shape skipped).
* ``rectangle`` shapes are taken as 4-vertex polygons (with a warning).
* ``point`` shapes labelled ``base`` / ``tip`` (or ``<label>_base`` / ``<label>_tip``,
  restricted to nails of that label) are landmarks, given to the nail whose
  polygon contains them (smallest if several; otherwise the nearest within 4 px),
  preferring nails of the same ``group_id``.
* other shape types (circle, line, linestrip, mask, ...) are skipped.
* ``imageData`` (the picture base64-encoded inside the JSON) is decoded into ``ImportedImage.image_data``:
  the import uses it when no file is found at ``imagePath``, or when ``imagePath`` leads outside the import
  folder (an ``annotations/`` folder imported alone, its JSONs naming ``../images/x.jpg``; nothing outside is
  read).

What is left out (a malformed or unsupported shape, an unknown label, a landmark that belongs to no
nail) is a problem (``ImportedDataset.problems``); what is converted (a rectangle) is only a warning.
"""
from __future__ import annotations

import base64
import binascii
import os

from dataset.geometry import confirmed_geometry

from .errors import FormatError, NotThisFormat
from .files import ImageFinder, read_json, walk_files
from .labels import IGNORE, NAIL, landmark_of, resolve_label
from .records import ImportCollector, ImportedImage, positive_size
from .registry import importer
from .repair import PendingNail, assign_landmarks, finish_geometry, finite_points, nails_to_dicts


def _is_labelme(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("shapes"), list)


def _parse_one(path: str, data: dict, label_map: dict, collect: ImportCollector, finder: ImageFinder,
               repair: bool = True) -> None:
    image_path = data.get("imagePath")
    if isinstance(image_path, str) and image_path.strip():
        file_name = image_path.replace("\\", "/").rstrip("/").split("/")[-1]
    else:
        file_name = os.path.splitext(os.path.basename(path))[0] + ".jpg"
        collect.warn(f"{os.path.basename(path)}: no imagePath; assuming {file_name}")
    width, height = data.get("imageWidth"), data.get("imageHeight")
    image = ImportedImage(file_name=file_name, named_path=image_path if isinstance(image_path, str) and image_path.strip() else None,
                          width=positive_size(width), height=positive_size(height),
                          geometry={"nails": [], "ignore": []})
    if isinstance(image_path, str):
        image.image_path = finder.find(image_path, os.path.dirname(path))
    warn = lambda message: collect.warn(message, image)  # noqa: E731
    problem = lambda message: collect.problem(message, image)  # noqa: E731
    read_identity(image, data.get("nailset"), warn)  # participant and original name, in NailSet's own export
    embedded = data.get("imageData")
    if isinstance(embedded, str) and embedded.strip():
        try:
            image.image_data = base64.b64decode(embedded.split(",", 1)[-1] if embedded.startswith("data:") else embedded,
                                                validate=True)
        except (binascii.Error, ValueError):
            problem("imageData is not valid base64; the embedded picture was ignored")
    nails, ignore, landmarks = [], [], []
    for number, shape in enumerate(data["shapes"], start=1):
        if not isinstance(shape, dict):
            problem(f"shape {number} is not an object; skipped")
            continue
        label = shape.get("label")
        label = "" if label is None else str(label)
        kind = shape.get("shape_type") or "polygon"
        ref = f"shape {number} ({kind} {label!r})"
        points = finite_points(shape.get("points"))
        if points is None:
            problem(f"{ref}: points are not a list of [x, y] finite numbers; skipped")
            continue
        group = shape.get("group_id")
        if kind == "point":
            landmark = landmark_of(label, label_map)
            if landmark is None:
                if resolve_label(label, label_map)[0] == NAIL:
                    problem(f"{ref}: a point cannot be a nail; skipped")
                else:
                    collect.unknown(label, image)
                continue
            if len(points) != 1:
                problem(f"{ref}: a point shape needs exactly one point; skipped")
                continue
            landmarks.append((landmark[0], landmark[1], points[0], group))
            continue
        if kind == "rectangle":
            if len(points) != 2:
                problem(f"{ref}: a rectangle needs two corners; skipped")
                continue
            (x0, y0), (x1, y1) = points
            points = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            warn(f"{ref}: rectangle taken as a 4-vertex polygon")
        elif kind != "polygon":
            problem(f"{ref}: shape type {kind!r} is not supported; skipped")
            continue
        role, finger = resolve_label(label, label_map)
        if role == IGNORE:
            ignore.append(points)
        elif role == NAIL:
            nails.append(PendingNail(points, finger, label, group, shape.get("nail_id")))  # nail_id: NailSet's export
        elif landmark_of(label, label_map) is not None:
            problem(f"{ref}: a landmark label on a polygon; skipped")
        else:
            collect.unknown(label, image)
    assign_landmarks(nails, landmarks, problem)
    image.geometry = finish_geometry(nails_to_dicts(nails), ignore, warn, repair)
    collect.add(image)


@importer("labelme", "json", embeds_images=True)
def import_labelme(path: str, label_map: dict, *, repair: bool = True):
    """LabelMe JSON: one file per image, or a folder (searched recursively) of them."""
    collect = ImportCollector()
    if os.path.isdir(path):
        files = walk_files(path, (".json",))
        finder = ImageFinder(path)
        parsed = 0
        for file_path in files:
            try:
                data = read_json(file_path)
            except FormatError as exc:
                collect.warn(str(exc) + "; skipped")
                continue
            if not _is_labelme(data):
                collect.warn(f"{os.path.relpath(file_path, path)} is not a LabelMe file (no shapes list); skipped")
                continue
            _parse_one(file_path, data, label_map, collect, finder, repair)
            parsed += 1
        if not parsed:
            raise FormatError(f"no LabelMe JSON files found in {os.path.basename(path) or path}")
    else:
        data = read_json(path)
        if not _is_labelme(data):
            raise NotThisFormat(f"{os.path.basename(path)} is not a LabelMe file (no shapes list)")
        _parse_one(path, data, label_map, collect, ImageFinder(os.path.dirname(os.path.abspath(path))), repair)
    return collect.finish()



# --------------------------------------------------------------------------- export

import json  # noqa: E402

from .labels import FINGER_LABELS, UNKNOWN_LABEL  # noqa: E402  (the exporter's own names, apart from the importer's above)
from .naming import stem_of  # noqa: E402
from .records import SPLITS, check_meta, check_record, read_identity  # noqa: E402
from .registry import exporter  # noqa: E402

LABELME_VERSION = "5.5.0"   # the layout of LabelMe 5.x (shapes with group_id, description, flags, mask)
IGNORE_SHAPE_LABEL = "ignore"


def _shape(label: str, points, shape_type: str, group_id=None, **extra) -> dict:
    return {"label": label, "points": [[float(x), float(y)] for x, y in points], "group_id": group_id,
            "description": "", "shape_type": shape_type, "flags": {}, "mask": None, **extra}


def labelme_document(record, image_path: str, meta: dict) -> dict:
    """One image's LabelMe 5.x JSON: per nail a polygon labelled with its finger ("left_thumb" ..., "nail" when
    unknown) and, with landmarks, "base" and "tip" points, all three with the nail's group_id; ignore regions as
    "ignore" polygons. ``nailset`` (kept by LabelMe as extra data) says whose image it is."""
    shapes = []
    for number, nail in enumerate(confirmed_geometry(record.geometry)["nails"], start=1):
        label = FINGER_LABELS.get(nail.get("finger"), UNKNOWN_LABEL)
        extra = {"nail_id": nail["id"]} if isinstance(nail.get("id"), str) else {}
        shapes.append(_shape(label, nail["polygon"], "polygon", number, **extra))
        if nail.get("base") is not None and nail.get("tip") is not None:
            shapes.append(_shape("base", [nail["base"]], "point", number))
            shapes.append(_shape("tip", [nail["tip"]], "point", number))
    for region in record.geometry.get("ignore") or []:
        shapes.append(_shape(IGNORE_SHAPE_LABEL, region, "polygon"))
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": record.height, "imageWidth": record.width,
            "nailset": {"snapshot": meta["snapshot"], "split": record.split, "image_id": record.image_id,
                        **record.identity(), "sha256": record.sha256}}


@exporter("labelme", "zip", title="LabelMe")
def export_labelme(records, target, meta) -> dict:
    """LabelMe 5.x: one JSON beside each image, per split folder; nails grouped with their base/tip points."""
    check_meta(meta)
    seen: set[str] = set()
    stems: set[str] = set()
    summary = {"images": 0, "nails": 0, "ignore_regions": 0, "splits": dict.fromkeys(SPLITS, 0)}
    for record in records:
        check_record(record, seen)
        stem, split = stem_of(record.file_name), record.split
        if stem.casefold() in stems:
            raise FormatError(f"image {record.image_id}: another image's file name has the stem {stem!r}")
        stems.add(stem.casefold())
        target.copy_file(f"{split}/{record.file_name}", record.source_path)
        document = labelme_document(record, record.file_name, meta)
        target.write_text(f"{split}/{stem}.json", json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        summary["images"] += 1
        summary["splits"][split] += 1
        summary["nails"] += len(record.geometry.get("nails") or [])
        summary["ignore_regions"] += len(record.geometry.get("ignore") or [])
    return summary
