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
* other shape types (circle, line, linestrip, mask, ...) are skipped with a warning.
"""
from __future__ import annotations

import os

from .base import (
    IGNORE, NAIL, FormatError, ImageFinder, ImportedImage, PendingNail, _Collector, assign_landmarks,
    finish_geometry, finite_points, importer, landmark_of, nails_to_dicts, read_json,
    resolve_label, walk_files,
)


def _is_labelme(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("shapes"), list)


def _parse_one(path: str, data: dict, label_map: dict, collect: _Collector, finder: ImageFinder,
               repair: bool = True) -> None:
    image_path = data.get("imagePath")
    if isinstance(image_path, str) and image_path.strip():
        file_name = image_path.replace("\\", "/").rstrip("/").split("/")[-1]
    else:
        file_name = os.path.splitext(os.path.basename(path))[0] + ".jpg"
        collect.warn(f"{os.path.basename(path)}: no imagePath; assuming {file_name}")
    width, height = data.get("imageWidth"), data.get("imageHeight")
    image = ImportedImage(file_name=file_name, named_path=image_path if isinstance(image_path, str) and image_path.strip() else None,
                          width=width if type(width) is int and width > 0 else None,
                          height=height if type(height) is int and height > 0 else None,
                          geometry={"nails": [], "ignore": []})
    if isinstance(image_path, str):
        image.image_path = finder.find(image_path, os.path.dirname(path))
    warn = lambda message: collect.warn(message, image)  # noqa: E731
    nails, ignore, landmarks = [], [], []
    for number, shape in enumerate(data["shapes"], start=1):
        if not isinstance(shape, dict):
            warn(f"shape {number} is not an object; skipped")
            continue
        label = shape.get("label")
        label = "" if label is None else str(label)
        kind = shape.get("shape_type") or "polygon"
        ref = f"shape {number} ({kind} {label!r})"
        points = finite_points(shape.get("points"))
        if points is None:
            warn(f"{ref}: points are not a list of [x, y] numbers; skipped")
            continue
        group = shape.get("group_id")
        if kind == "point":
            landmark = landmark_of(label, label_map)
            if landmark is None:
                if resolve_label(label, label_map)[0] == NAIL:
                    warn(f"{ref}: a point cannot be a nail; skipped")
                else:
                    collect.unknown(label, image)
                continue
            if len(points) != 1:
                warn(f"{ref}: a point shape needs exactly one point; skipped")
                continue
            landmarks.append((landmark[0], landmark[1], points[0], group))
            continue
        if kind == "rectangle":
            if len(points) != 2:
                warn(f"{ref}: a rectangle needs two corners; skipped")
                continue
            (x0, y0), (x1, y1) = points
            points = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            warn(f"{ref}: rectangle taken as a 4-vertex polygon")
        elif kind != "polygon":
            warn(f"{ref}: shape type {kind!r} is not supported; skipped")
            continue
        role, finger = resolve_label(label, label_map)
        if role == IGNORE:
            ignore.append(points)
        elif role == NAIL:
            nails.append(PendingNail(points, finger, label, group))
        elif landmark_of(label, label_map) is not None:
            warn(f"{ref}: a landmark label on a polygon; skipped")
        else:
            collect.unknown(label, image)
    assign_landmarks(nails, landmarks, warn)
    image.geometry = finish_geometry(nails_to_dicts(nails), ignore, warn, repair)
    collect.add(image)


@importer("labelme", "json")
def import_labelme(path: str, label_map: dict, *, repair: bool = True):
    """LabelMe JSON: one file per image, or a folder (searched recursively) of them."""
    collect = _Collector()
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
            raise FormatError(f"{os.path.basename(path)} is not a LabelMe file (no shapes list)")
        _parse_one(path, data, label_map, collect, ImageFinder(os.path.dirname(os.path.abspath(path))), repair)
    return collect.finish()

