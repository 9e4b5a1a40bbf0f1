"""Ultralytics YOLO segmentation: exporter and importer.

Layout::

    data.yaml                     the splits that hold images (see below), nc, names
    images/<split>/<file_name>
    labels/<split>/<stem>.txt     one line per nail: "cls x1 y1 x2 y2 ..." normalised to [0, 1]
    nailset.json                  per image: split, participant, original name, image id, sha256, size

Class ids: 0..9 = fingers 1..10 (left thumb .. right little), 10 = nail with unknown
finger. YOLO has no ignore regions and no landmarks: both are left out (counted
in the summary). An image without nails gets an empty label file (a background image).

``data.yaml`` names only splits that hold images, so every folder it names exists.
Ultralytics requires ``train`` and ``val``: when one of them is empty, it points at the
folder of another split, with a comment saying so (and a warning in the summary).

The importer reads any Ultralytics segmentation dataset (``data.yaml`` with ``names``;
class names go through the label map) and takes participants and original names from
``nailset.json`` when it is there (a NailSet export); without it, give a participant.
"""
from __future__ import annotations

import json
import os

from dataset.geometry import FINGER_NAMES, confirmed_geometry

from .errors import FormatError
from .files import read_json, walk_files
from .labels import FINGER_LABELS, IGNORE, NAIL, UNKNOWN_LABEL, resolve_label
from .records import SPLITS, ImportCollector, ImportedImage, check_meta, check_unique_stem, read_identity
from .registry import exporter, importer
from .repair import finish_geometry, flat_to_points, make_nail
from .targets import FolderTarget, JsonArraySpool

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


REQUIRED_SPLITS = ("train", "val")  # Ultralytics' check_det_dataset refuses a data.yaml without both


def data_yaml(meta: dict, root: str | None, splits=SPLITS) -> str:
    """data.yaml naming only ``splits`` (those that hold images); train / val, which Ultralytics requires,
    borrow another split's folder when empty."""
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
    present = [split for split in SPLITS if split in splits]
    for split in SPLITS:
        if split in present:
            lines.append(f"{split}: images/{split}")
        elif split in REQUIRED_SPLITS and present:
            stand_in = next(s for s in ("train", "val", "test") if s in present)
            lines.append(f"# this snapshot has no {split} images; Ultralytics needs a {split} entry, so it names the "
                         f"{stand_in} images (metrics on it are not held out)")
            lines.append(f"{split}: images/{stand_in}")
    lines.append(f"nc: {len(yolo_names())}")
    lines.append("names:")
    lines += [f"  {k}: {q(v)}" for k, v in yolo_names().items()]
    return "\n".join(lines) + "\n"


SIDECAR = "nailset.json"
FORMAT = "nailset-yolo"
FORMAT_VERSION = 1


@exporter("yolo", "zip", title="YOLO")
def export_yolo(records, target, meta) -> dict:
    """Ultralytics YOLO segmentation: normalised polygons per image, data.yaml and nailset.json."""
    check_meta(meta)
    seen: set[str] = set()
    stems: set[str] = set()
    entries = JsonArraySpool()
    summary = {"images": 0, "nails": 0, "splits": dict.fromkeys(SPLITS, 0),
               "ignore_regions_dropped": 0, "landmarks_dropped": 0, "warnings": []}
    try:
        for record in records:
            stem, split = check_unique_stem(record, seen, stems), record.split
            paths = {"image": f"images/{split}/{record.file_name}", "label": f"labels/{split}/{stem}.txt"}
            target.copy_file(paths["image"], record.source_path)
            lines = label_lines(confirmed_geometry(record.geometry), record.width, record.height)
            target.write_text(paths["label"], "".join(line + "\n" for line in lines))
            entries.append({"image_id": record.image_id, "split": split, "file_name": record.file_name, **paths,
                            **record.identity(), "width": record.width, "height": record.height, "sha256": record.sha256})
            nails = record.geometry.get("nails") or []
            summary["images"] += 1
            summary["splits"][split] += 1
            summary["nails"] += len(lines)
            summary["ignore_regions_dropped"] += len(record.geometry.get("ignore") or [])
            summary["landmarks_dropped"] += sum(1 for n in nails if n.get("base") is not None)
        present = [split for split, count in summary["splits"].items() if count]
        summary["warnings"] = [f"no {split} images: data.yaml's {split} entry names the {present[0]} images"
                               for split in REQUIRED_SPLITS if present and split not in present]
        root = target.root if isinstance(target, FolderTarget) else None
        head = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "snapshot": meta["snapshot"],
                           "content_hash": meta["content_hash"], "created_at": meta["created_at"]}, ensure_ascii=False)
        with target.open(SIDECAR, len(head) + entries.size() + 16) as out:
            out.write(head[:-1].encode("utf-8") + b', "images": ')
            entries.write_to(out)
            out.write(b"}\n")
        target.write_text("data.yaml", data_yaml(meta, root, present))
    finally:
        entries.close()
    return summary


# --------------------------------------------------------------------------- data.yaml (the subset Ultralytics files use)

def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _split_flow(text: str) -> list[str]:
    items, depth, quote, current = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        current += ch
    if current.strip():
        items.append(current.strip())
    return items


def _scalar(text: str):
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(item) for item in _split_flow(text[1:-1])]
    if text.startswith("{") and text.endswith("}"):
        out = {}
        for item in _split_flow(text[1:-1]):
            key, sep, value = item.partition(":")
            if not sep:
                raise FormatError(f"data.yaml: cannot read {item!r} in a {{...}} mapping")
            out[_scalar(key)] = _scalar(value)
        return out
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except ValueError:
            raise FormatError(f"data.yaml: cannot read the string {text}") from None
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_data_yaml(text: str) -> dict:
    """The keys of an Ultralytics data.yaml: ``key: scalar``, ``key: [flow, list]`` / ``{0: flow}``, or ``key:``
    followed by an indented block of ``- item`` or ``k: v`` lines (what these files hold; no anchors, no
    multi-line strings). Anything else is a FormatError naming the line."""
    data: dict = {}
    block_key = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        if not line.strip() or line.strip() in ("---", "..."):
            continue
        indented = line[0] in " \t"
        stripped = line.strip()
        if indented and block_key is not None:
            if stripped.startswith("- ") or stripped == "-":
                if data[block_key] is None:
                    data[block_key] = []
                if not isinstance(data[block_key], list):
                    raise FormatError(f"data.yaml line {number}: a list item inside the mapping {block_key!r}")
                data[block_key].append(_scalar(stripped[1:]))
                continue
            key, sep, value = stripped.partition(":")
            if sep and (not value or value[0] in " \t"):
                if data[block_key] is None:
                    data[block_key] = {}
                if not isinstance(data[block_key], dict):
                    raise FormatError(f"data.yaml line {number}: a mapping entry inside the list {block_key!r}")
                data[block_key][_scalar(key)] = _scalar(value)
                continue
            raise FormatError(f"data.yaml line {number}: cannot read {stripped!r}")
        if indented:
            raise FormatError(f"data.yaml line {number}: unexpected indentation")
        key, sep, value = line.partition(":")
        if not sep or (value and value[0] not in " \t"):
            raise FormatError(f"data.yaml line {number}: expected 'key: value', got {stripped!r}")
        key = str(_scalar(key))
        data[key] = _scalar(value) if value.strip() else None
        block_key = key if not value.strip() else None
    return data


# --------------------------------------------------------------------------- import

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif")


def _class_table(names, label_map: dict) -> dict[int, tuple[str, str, int | None]]:
    """class id -> (name, role, finger) through the label map."""
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        raise FormatError("data.yaml has no names (class id -> name)")
    table = {}
    for key, name in names.items():
        if type(key) is not int:
            raise FormatError(f"data.yaml names: class id {key!r} is not a whole number")
        table[key] = (str(name), *resolve_label(name, label_map))
    return table


def _label_path(image_path: str) -> str:
    """Ultralytics' rule: the last /images/ becomes /labels/, the suffix .txt."""
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return os.path.splitext(labels.join(image_path.rsplit(images, 1)))[0] + ".txt"


def _image_size(path: str) -> tuple[int, int] | None:
    """Width and height as Ultralytics sees them (EXIF orientation applied), from the header only."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated by 90 degrees
                width, height = height, width
            return width, height
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _label_shapes(text: str, classes: dict, width: int, height: int, collect: ImportCollector, image: ImportedImage):
    nails, ignore = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        values = line.split()
        if not values:
            continue
        ref = f"line {number}"
        try:
            cls = int(values[0])
            coords = [float(v) for v in values[1:]]
        except ValueError:
            collect.problem(f"{ref}: not 'class x1 y1 x2 y2 ...' numbers; skipped", image)
            continue
        if cls not in classes:
            collect.unknown(f"class {cls}", image)
            continue
        name, role, finger = classes[cls]
        if len(coords) == 4:  # a detection box: cx cy w h
            cx, cy, w, h = coords
            coords = [cx - w / 2, cy - h / 2, cx + w / 2, cy - h / 2, cx + w / 2, cy + h / 2, cx - w / 2, cy + h / 2]
            collect.warn(f"{ref}: a detection box taken as a 4-vertex polygon", image)
        points = flat_to_points(coords)
        if points is None or len(points) < 3:
            collect.problem(f"{ref}: a polygon needs at least 3 points of finite numbers; skipped", image)
            continue
        points = [[x * width, y * height] for x, y in points]
        if role == IGNORE:
            ignore.append(points)
        elif role == NAIL:
            nails.append(make_nail(points, finger))
        else:
            collect.unknown(name, image)
    return nails, ignore


def _yaml_path(path: str) -> str:
    if os.path.isfile(path):
        return path
    candidates = [os.path.join(path, name) for name in ("data.yaml", "data.yml")]
    candidates += sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith((".yaml", ".yml")))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise FormatError(f"no data.yaml in {os.path.basename(path) or path}: not a YOLO dataset")


@importer("yolo", "yaml", patterns=("data.yaml",))
def import_yolo(path: str, label_map: dict, *, repair: bool = True):
    """Ultralytics YOLO segmentation (data.yaml, images/, labels/); participants and names from a NailSet nailset.json."""
    yaml_path = _yaml_path(path)
    root = os.path.dirname(os.path.abspath(yaml_path))
    try:
        with open(yaml_path, encoding="utf-8") as fh:
            data = read_data_yaml(fh.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read {os.path.basename(yaml_path)}: {exc}") from None
    classes = _class_table(data.get("names"), label_map)
    identities = {}
    sidecar = os.path.join(root, SIDECAR)
    if os.path.isfile(sidecar):
        info = read_json(sidecar)
        if isinstance(info, dict) and info.get("format") == FORMAT and isinstance(info.get("images"), list):
            identities = {entry["image"]: entry for entry in info["images"]
                          if isinstance(entry, dict) and isinstance(entry.get("image"), str)}
    collect = ImportCollector()
    real_root = os.path.realpath(root)
    seen: set[str] = set()
    for split in SPLITS:
        folders = data.get(split)
        for folder in folders if isinstance(folders, list) else [folders] if folders else []:
            if not isinstance(folder, str):
                collect.problem(f"data.yaml {split}: {folder!r} is not a folder path; skipped")
                continue
            full = os.path.realpath(os.path.join(root, folder))
            if os.path.commonpath([real_root, full]) != real_root:
                collect.problem(f"data.yaml {split}: {folder} is outside the dataset folder; skipped")
                continue
            if not os.path.isdir(full):
                collect.problem(f"data.yaml {split}: {folder} is not a folder (image lists are not supported); skipped")
                continue
            for image_file in walk_files(full, IMAGE_SUFFIXES):
                if os.path.realpath(image_file) in seen:  # a split standing in for another (see data_yaml)
                    continue
                seen.add(os.path.realpath(image_file))
                rel = os.path.relpath(image_file, root).replace(os.sep, "/")
                size = _image_size(image_file)
                image = ImportedImage(file_name=os.path.basename(image_file), named_path=rel,
                                      width=size and size[0], height=size and size[1],
                                      geometry={"nails": [], "ignore": []}, image_path=image_file)
                warn = lambda message, image=image: collect.warn(message, image)  # noqa: E731
                if rel in identities:
                    read_identity(image, identities[rel], warn)
                if size is None:
                    collect.problem("not a readable image; skipped", image)
                    continue
                label_file = _label_path(image_file)
                if os.path.isfile(label_file):
                    with open(label_file, encoding="utf-8", errors="replace") as fh:
                        nails, ignore = _label_shapes(fh.read(), classes, size[0], size[1], collect, image)
                else:
                    nails, ignore = [], []
                    warn("no label file: an image without nails")
                image.geometry = finish_geometry(nails, ignore, warn, repair)
                collect.add(image)
    if not seen:
        raise FormatError(f"{os.path.basename(yaml_path)} names no folder with images (train / val / test)")
    return collect.finish()
