"""Shared pieces of the format converters: registry, records, export targets, label map, safe unzip.

Plain Python (+ NumPy where needed); this package must never import Django.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Callable, Iterable, Iterator

from dataset.geometry import FINGER_NAMES, MAX_ID_LENGTH, normalize_geometry

SPLITS = ("train", "val", "test")
CHUNK = 1 << 20

# Label names used by every exporter: finger k -> "left_thumb" ... "right_little"; unknown -> "nail".
FINGER_LABELS: dict[int, str] = {k: name.replace(" ", "_") for k, name in FINGER_NAMES.items()}
UNKNOWN_LABEL = "nail"


class FormatError(ValueError):
    """A conversion that cannot go ahead (unknown format, bad input file, bad record); the message says why."""


class NotThisFormat(FormatError):
    """A readable file of another kind (a JSON that is not COCO, an XML that is not CVAT): a folder import
    passes over it with a warning; named on its own, it is refused."""


class UnsafeArchiveError(FormatError):
    """A zip archive that would write outside its folder, holds links, or unpacks too big."""


# --------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class Exporter:
    name: str
    ext: str
    func: Callable
    description: str = ""
    title: str = ""     # how pages name the format ("COCO", "LabelMe")

    def export(self, records: Iterable, target: "ExportTarget", meta: dict) -> dict:
        """Write ``records`` (consumed once, lazily) into ``target``; returns a summary dict."""
        return self.func(records, target, meta)

    __call__ = export


@dataclass(frozen=True)
class Importer:
    name: str
    ext: str
    func: Callable
    description: str = ""
    patterns: tuple[str, ...] = ()  # the annotation files of this format in a folder (globs), e.g. ("*.json",)

    def parse(self, path, label_map: dict | None = None, *, extract_dir=None,
              max_archive_size: int | None = None, repair: bool = True) -> "ImportedDataset":
        """Read a file, a folder or a zip archive of this format.

        A zip is unpacked with ``safe_extract`` into ``extract_dir`` (kept, so
        ``ImportedImage.image_path`` stays valid) or, without it, into a temporary
        folder removed afterwards (``image_path`` is then None). ``repair``: fix polygons
        that touch or cross themselves (see ``repair_ring``; each fix is a warning).
        """
        labels = prepare_label_map(label_map)
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FormatError(f"{path} does not exist")
        if os.path.isfile(path) and zipfile.is_zipfile(path):
            limit = {} if max_archive_size is None else {"max_total_size": max_archive_size}
            if extract_dir is not None:
                safe_extract(path, extract_dir, **limit)
                return self.func(os.fspath(extract_dir), labels, repair=repair)
            with tempfile.TemporaryDirectory(prefix="nailset-import-") as tmp:
                safe_extract(path, tmp, **limit)
                result = self.func(tmp, labels, repair=repair)
            for image in result.images:
                image.image_path = None  # the folder is gone
            return result
        return self.func(path, labels, repair=repair)

    __call__ = parse


EXPORTERS: dict[str, Exporter] = {}
IMPORTERS: dict[str, Importer] = {}


def exporter(name: str, ext: str, description: str = "", *, title: str = ""):
    """Register ``func(records, target, meta) -> dict`` as the exporter ``name`` (``title``: its display name)."""
    def register(func):
        EXPORTERS[name] = Exporter(name, ext, func, description or (func.__doc__ or "").strip().split("\n")[0],
                                   title or name)
        return func
    return register


def importer(name: str, ext: str, description: str = "", *, patterns: tuple[str, ...] | None = None):
    """Register ``func(path, label_map, *, repair) -> ImportedDataset`` (path: a file or folder) as the importer ``name``;
    ``patterns``: the globs of its annotation files in a folder (default ``*.<ext>``)."""
    def register(func):
        IMPORTERS[name] = Importer(name, ext, func, description or (func.__doc__ or "").strip().split("\n")[0],
                                   tuple(patterns or (f"*.{ext}",)))
        return func
    return register


def _lookup(table: dict, name, kind: str):
    try:
        return table[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(table)) or "none"
        raise FormatError(f"unknown {kind} format {name!r}; known: {known}") from None


def get_exporter(name: str) -> Exporter:
    return _lookup(EXPORTERS, name, "export")


def get_importer(name: str) -> Importer:
    return _lookup(IMPORTERS, name, "import")


# --------------------------------------------------------------------------- records

@dataclass
class ExportRecord:
    image_id: int
    file_name: str      # the image's name inside the export, unique across the export, e.g. "000123.jpg"
    source_path: str    # absolute path of the stored image file (copied byte for byte)
    width: int
    height: int
    participant: str
    split: str          # "train" | "val" | "test"
    geometry: dict      # validated, normalised geometry (dataset.geometry)
    sha256: str
    original_name: str = ""         # the name of the file the participant sent ("" when unknown)
    frame_index: int | None = None  # the frame of that video this image is, None for a photo

    def identity(self) -> dict:
        """Who and what this image is, written into every export so that a re-import restores it."""
        return {"participant": self.participant, "original_name": self.original_name,
                **({"frame_index": self.frame_index} if self.frame_index is not None else {})}


@dataclass
class ImportedImage:
    file_name: str
    width: int | None
    height: int | None
    geometry: dict                      # normalize_geometry() form; NOT validated (the caller runs validate_geometry)
    unknown_labels: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    image_path: str | None = None       # the image file when found next to the labels
    named_path: str | None = None       # the image's path as the label file writes it (may hold folders, .., /)
    participant: str | None = None      # the participant code a NailSet export gives the image (see read_identity)
    original_name: str | None = None    # the name of the file the participant sent, from a NailSet export
    image_data: bytes | None = None     # the picture embedded in the label file (LabelMe imageData), decoded


@dataclass
class ImportedDataset:
    images: list[ImportedImage] = field(default_factory=list)
    unknown_labels: dict[str, int] = field(default_factory=dict)   # label -> shapes skipped
    warnings: list[str] = field(default_factory=list)   # everything worth saying, problems included
    problems: list[str] = field(default_factory=list)   # what was left out: malformed shapes, dangling references,
                                                        # unknown labels (an import refuses a file that has any)


MAX_WARNINGS = 1000


class _Collector:
    """Builds an ImportedDataset: counts unknown labels, caps the warning list."""

    def __init__(self):
        self.dataset = ImportedDataset()
        self.suppressed = 0
        self.names: set[str] = set()

    def warn(self, message: str, image: ImportedImage | None = None) -> str:
        if image is not None:
            image.warnings.append(message)
            message = f"{image.file_name}: {message}"
        if len(self.dataset.warnings) < MAX_WARNINGS:
            self.dataset.warnings.append(message)
        else:
            self.suppressed += 1
        return message

    def problem(self, message: str, image: ImportedImage | None = None) -> None:
        """Something of the file was left out (a malformed shape, a dangling reference): a warning that
        makes an import refuse the file unless it was told to skip what is invalid."""
        message = self.warn(message, image)
        if len(self.dataset.problems) < MAX_WARNINGS:
            self.dataset.problems.append(message)

    def unknown(self, label: str, image: ImportedImage | None = None) -> None:
        label = str(label)
        self.dataset.unknown_labels[label] = self.dataset.unknown_labels.get(label, 0) + 1
        if image is not None:
            image.unknown_labels.add(label)

    def add(self, image: ImportedImage) -> bool:
        key = image.named_path or image.file_name  # CVAT's left/hand.jpg and right/hand.jpg are two images
        if key in self.names:
            self.problem(f"{key}: a second set of labels for this image was skipped")
            return False
        self.names.add(key)
        self.dataset.images.append(image)
        return True

    def finish(self) -> ImportedDataset:
        if self.suppressed:
            self.dataset.warnings.append(f"... and {self.suppressed} more warnings")
        self.dataset.problems += [f"unknown label {label!r}: {count} shape{'s' if count != 1 else ''} left out"
                                  for label, count in self.dataset.unknown_labels.items()]
        return self.dataset


def check_meta(meta: dict) -> dict:
    if not isinstance(meta, dict):
        raise FormatError("meta must be a dict with snapshot, content_hash and created_at")
    missing = [k for k in ("snapshot", "content_hash", "created_at") if k not in meta]
    if missing:
        raise FormatError(f"meta is missing {', '.join(missing)}")
    return meta


_BAD_NAME = re.compile(r"[\x00-\x1f\\/]")


def check_record(record: ExportRecord, seen: set[str]) -> None:
    """Structural checks an exporter needs before writing a record."""
    name = record.file_name
    if not isinstance(name, str) or not name or name in (".", "..") or _BAD_NAME.search(name):
        raise FormatError(f"image {record.image_id}: bad file_name {name!r} (a plain file name is needed)")
    if record.split not in SPLITS:
        raise FormatError(f"image {record.image_id}: split must be one of {', '.join(SPLITS)}, got {record.split!r}")
    for key in ("width", "height"):
        value = getattr(record, key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise FormatError(f"image {record.image_id}: {key} must be a positive integer, got {value!r}")
    if not isinstance(record.geometry, dict):
        raise FormatError(f"image {record.image_id}: geometry must be a dict")
    if name in seen:
        raise FormatError(f"image {record.image_id}: file_name {name!r} is used twice in this export")
    seen.add(name)


def stem_of(file_name: str) -> str:
    stem, _ = os.path.splitext(file_name)
    return stem or file_name


def check_unique_stem(record: ExportRecord, seen: set[str], stems: set[str]) -> str:
    """``check_record``, then the record's stem, which must be new: formats that name per-image files by stem
    (masks, YOLO labels) cannot hold two images whose names differ only in their suffix."""
    check_record(record, seen)
    stem = stem_of(record.file_name)
    if stem in stems:
        raise FormatError(f"image {record.image_id}: another image's file name has the stem {stem!r}")
    stems.add(stem)
    return stem


def positive_size(value) -> int | None:
    """A width or height as a label file gives it: a positive int, else None (unknown)."""
    return value if type(value) is int and value > 0 else None


# --------------------------------------------------------------------------- names inside exports

NAME_CHOICES = ("original", "id")   # exports name images after what the participant sent, or by image id
MAX_STEM = 100
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f:*?"<>|]+')


def picture_name(original_name: str, frame_index: int | None, suffix: str) -> str:
    """The name of a picture after the file the participant sent: its base name without folders, unsafe
    characters as '_', with the stored image's ``suffix`` (its bytes are that type now); a frame of a video
    gets its index: ``clip.mp4`` frame 12 -> ``clip-frame0012.jpg``. "" when nothing usable is left."""
    base = str(original_name or "").replace("\\", "/").split("/")[-1]
    stem = os.path.splitext(base)[0] if "." in base.lstrip(".") else base
    stem = " ".join(_UNSAFE_NAME.sub("_", stem).split()).strip(". -")[:MAX_STEM].rstrip(". -")
    if not stem:
        return ""
    if frame_index is not None:
        stem = f"{stem}-frame{frame_index:04d}"
    return stem + suffix


class ExportNames:
    """File names of one export: what participants called their files (``names="original"``) or the image id
    (``names="id"``), made unique, e.g. ``hand.jpg``, ``hand-2.jpg``. Unique by stem and regardless of case:
    YOLO and masks name label files after the stem, and some file systems ignore case."""

    def __init__(self, names: str = "original"):
        if names not in NAME_CHOICES:
            raise FormatError(f"names must be one of {', '.join(NAME_CHOICES)}, got {names!r}")
        self.names = names
        self._used: set[str] = set()

    def name(self, image_id: int, suffix: str, original_name: str = "", frame_index: int | None = None) -> str:
        wanted = picture_name(original_name, frame_index, suffix) if self.names == "original" else ""
        stem = stem_of(wanted) if wanted else f"{image_id:07d}"
        candidate, number = stem, 1
        while candidate.casefold() in self._used:
            number += 1
            candidate = f"{stem}-{number}"
        self._used.add(candidate.casefold())
        return candidate + suffix


_PARTICIPANT_CODE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


def read_identity(image: "ImportedImage", info, warn=None) -> None:
    """Take the participant and the original file name a NailSet export writes beside each image
    (``ExportRecord.identity``) into ``image``; a code that is not a participant code is a warning."""
    if not isinstance(info, dict):
        return
    code = info.get("participant")
    if isinstance(code, str) and _PARTICIPANT_CODE.match(code):
        image.participant = code
    elif code not in (None, "") and warn:
        warn(f"participant {code!r} is not a participant code (letters, digits, '-', '_'); ignored")
    original, frame = info.get("original_name"), info.get("frame_index")
    if isinstance(original, str) and original.strip():
        if type(frame) is int and frame >= 0:  # a frame of a video comes back as a photo: name it after the frame
            original = picture_name(original, frame, os.path.splitext(image.file_name)[1]) or original
        image.original_name = original[:255]


# --------------------------------------------------------------------------- targets

STORED_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".avif", ".gif", ".zip", ".gz", ".mp4", ".mov"}


def check_member_name(name: str) -> str:
    """A relative POSIX path without empty, '.' or '..' parts (names inside an export)."""
    parts = name.split("/") if isinstance(name, str) else []
    if (not parts or name.startswith("/") or "\\" in name or "\x00" in name
            or any(p in ("", ".", "..") for p in parts)):
        raise FormatError(f"bad name inside an export: {name!r}")
    return name


class ExportTarget:
    """Where an exporter writes: named entries, one open at a time."""

    def __init__(self):
        self.names: set[str] = set()

    def _claim(self, name: str) -> str:
        check_member_name(name)
        if name in self.names:
            raise FormatError(f"{name} is written twice")
        self.names.add(name)
        return name

    @contextmanager
    def open(self, name: str, size_hint: int | None = None) -> Iterator[IO[bytes]]:
        """A binary stream for the entry ``name``; close it (leave the with block) before the next."""
        raise NotImplementedError

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.open(name, len(data)) as out:
            out.write(data)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def copy_file(self, name: str, source_path) -> None:
        """Streamed copy of a file (never read whole into memory)."""
        try:
            size = os.path.getsize(source_path)
            src = open(source_path, "rb")
        except OSError as exc:
            raise FormatError(f"cannot read {source_path}: {exc.strerror or exc}") from None
        with src, self.open(name, size) as out:
            shutil.copyfileobj(src, out, CHUNK)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class FolderTarget(ExportTarget):
    """Writes entries as files under ``root`` (created if missing)."""

    def __init__(self, root):
        super().__init__()
        self.root = os.path.abspath(os.fspath(root))
        os.makedirs(self.root, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.root, *check_member_name(name).split("/"))

    @contextmanager
    def open(self, name, size_hint=None):
        path = self.path(self._claim(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            yield out


class ZipTarget(ExportTarget):
    """Writes a zip archive to a path or a writable binary file object (seekable or not, e.g. a stream).

    Entries are streamed through ``ZipFile.open(info, "w")``, so memory stays flat.
    Already compressed files (images, PNG, zip) are STORED; everything else (JSON,
    text, YAML, .npy) is DEFLATED (the direction-field .npy files are mostly zeros).
    A file object passed in is left open; a path is removed again when the export fails.
    """

    def __init__(self, path_or_fileobj, *, date_time: tuple | None = None):
        super().__init__()
        self._own_path = None if hasattr(path_or_fileobj, "write") else os.fspath(path_or_fileobj)
        self._date_time = date_time or time.localtime(time.time())[:6]
        self._zip = zipfile.ZipFile(path_or_fileobj, "w", allowZip64=True)
        self._closed = False

    def _claim(self, name: str) -> str:  # the zip's own name table, not a second set of names
        check_member_name(name)
        if name in self._zip.NameToInfo:
            raise FormatError(f"{name} is written twice")
        return name

    @contextmanager
    def open(self, name, size_hint=None):
        info = zipfile.ZipInfo(self._claim(name), date_time=self._date_time)
        suffix = os.path.splitext(name)[1].lower()
        info.compress_type = zipfile.ZIP_STORED if suffix in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        big = size_hint is None or size_hint > (1 << 30)
        with self._zip.open(info, "w", force_zip64=big and size_hint is not None) as out:
            yield out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._zip.close()

    def __exit__(self, exc_type, exc, tb):
        self.close()
        if exc_type is not None and self._own_path and os.path.exists(self._own_path):
            os.remove(self._own_path)
        return False


def open_target(path) -> ExportTarget:
    """``ZipTarget`` for a path ending in .zip, else ``FolderTarget``."""
    path = os.fspath(path)
    return ZipTarget(path) if path.lower().endswith(".zip") else FolderTarget(path)


class JsonArraySpool:
    """A JSON array written item by item to a temporary file, copied out at the end (flat memory)."""

    def __init__(self):
        self._file = tempfile.TemporaryFile()
        self.count = 0

    def append(self, item) -> None:
        data = json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        self._file.write(b"," + data if self.count else data)
        self.count += 1

    def size(self) -> int:
        return self._file.tell() + 2

    def write_to(self, out) -> None:
        out.write(b"[")
        self._file.flush()
        self._file.seek(0)
        shutil.copyfileobj(self._file, out, CHUNK)
        self._file.seek(0, io.SEEK_END)
        out.write(b"]")

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------- label map

def normalize_label(label) -> str:
    """Case-insensitive, with runs of spaces, underscores and hyphens as one '_': 'Left Thumb' -> 'left_thumb'."""
    return re.sub(r"[\s_\-]+", "_", str(label).strip().lower()).strip("_")


def _default_label_map() -> dict[str, int | None]:
    table: dict[str, int | None] = {}
    for alias in ("nail", "nails", "fingernail", "finger_nail", "nail_unknown", "unknown_nail",
                  "nail_finger_unknown", "nail_(finger_unknown)", "unknown"):
        table[alias] = None
    hands = {0: ("left", "l", "lh", "left_hand"), 5: ("right", "r", "rh", "right_hand")}
    fingers = {1: ("thumb",), 2: ("index", "pointer", "forefinger"), 3: ("middle",), 4: ("ring",),
               5: ("little", "pinky", "pinkie")}
    for offset, hand_aliases in hands.items():
        for number, finger_aliases in fingers.items():
            cls = offset + number
            for hand in hand_aliases:
                table[f"{hand}{number}"] = cls                 # L1, left1
                table[f"{hand}_{number}"] = cls                # l_1, left_1
                for name in finger_aliases:
                    for key in (f"{hand}_{name}", f"{name}_{hand}", f"{hand}_{name}_nail", f"{hand}_{name}_finger"):
                        table[key] = cls
            table[f"finger_{cls}"] = cls
    return table


DEFAULT_LABEL_MAP: dict[str, int | None] = _default_label_map()
IGNORE_LABELS = frozenset({"ignore", "ignored", "ignore_region", "crowd", "dont_care", "dontcare", "do_not_care"})
LANDMARK_LABELS = {"base": "base", "nail_base": "base", "base_point": "base",
                   "tip": "tip", "nail_tip": "tip", "tip_point": "tip"}


def prepare_label_map(label_map: dict | None) -> dict[str, int | None]:
    """Check a label map and normalise its keys (None -> DEFAULT_LABEL_MAP). It replaces the default."""
    if label_map is None:
        return dict(DEFAULT_LABEL_MAP)
    if not isinstance(label_map, dict):
        raise FormatError("label_map must be a dict of label -> finger class (1..10) or None")
    out = {}
    for key, value in label_map.items():
        if value is not None and (type(value) is not int or value not in FINGER_NAMES):
            raise FormatError(f"label_map[{key!r}] must be a finger class 1..10 or None, got {value!r}")
        out[normalize_label(key)] = value
    return out


NAIL, IGNORE, UNKNOWN = "nail", "ignore", "unknown"


def resolve_label(label, label_map: dict) -> tuple[str, int | None]:
    """(NAIL, finger) | (IGNORE, None) | (UNKNOWN, None) for a shape's label (label_map: prepared)."""
    key = normalize_label(label)
    if key in label_map:
        return NAIL, label_map[key]
    if key in IGNORE_LABELS:
        return IGNORE, None
    return UNKNOWN, None


def landmark_of(label, label_map: dict) -> tuple[str, str | None] | None:
    """('base'|'tip', owner) for a landmark label, owner = the normalised nail label of
    '<label>_base' / '<label>_tip' (or None: any nail); None when not a landmark label."""
    key = normalize_label(label)
    if key in LANDMARK_LABELS:
        return LANDMARK_LABELS[key], None
    for kind in ("base", "tip"):
        if key.endswith("_" + kind) and key[:-len(kind) - 1] in label_map:
            return kind, key[:-len(kind) - 1]
    return None


# --------------------------------------------------------------------------- geometry helpers

def finite_point(value) -> list[float] | None:
    """[x, y] as floats, or None when not two finite numbers."""
    try:
        x, y = value
        x, y = float(x), float(y)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(value[0], bool) or isinstance(value[1], bool):
        return None
    return [x, y] if math.isfinite(x) and math.isfinite(y) else None


def finite_points(values) -> list[list[float]] | None:
    """A list of [x, y] floats, or None when any vertex is not two finite numbers."""
    if not isinstance(values, (list, tuple)):
        return None
    out = []
    for value in values:
        point = finite_point(value)
        if point is None:
            return None
        out.append(point)
    return out


def flat_to_points(flat) -> list[list[float]] | None:
    """COCO / YOLO flat [x1, y1, x2, y2, ...] -> [[x, y], ...] (None if malformed)."""
    if not isinstance(flat, (list, tuple)) or len(flat) % 2:
        return None
    return finite_points([flat[i:i + 2] for i in range(0, len(flat), 2)])


def shoelace_area(points) -> float:
    n = len(points)
    return abs(sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
                   for i in range(n))) / 2.0


def make_nail(polygon, finger, base=None, tip=None, nail_id=None) -> dict:
    nail = {"polygon": polygon, "finger": finger, "base": base, "tip": tip}
    if isinstance(nail_id, str) and nail_id and len(nail_id) <= MAX_ID_LENGTH:
        nail = {"id": nail_id, **nail}
    return nail


def repair_ring(points: list) -> list | None:
    """A simple ring for a polygon that touches or crosses itself, or None when it cannot be repaired.

    ``points`` are normalised (rounded, no repeated consecutive vertices). The polygon is
    made valid (shapely.make_valid); spikes and pinches (a vertex visited twice, e.g. a
    trace around a mask that touches itself) vanish. When that leaves several parts, the
    largest is kept if it holds at least 90 % of the area; holes are dropped. The result is
    rounded like the input and must be a simple ring, else None.
    """
    import shapely
    from shapely.geometry import LinearRing, Polygon
    try:
        if len(points) < 3 or LinearRing(points).is_simple:
            return None
        fixed = shapely.make_valid(Polygon(points))
    except (ValueError, TypeError, shapely.errors.ShapelyError):
        return None
    parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
    parts = [q for g in parts for q in getattr(g, "geoms", [g]) if q.area > 0]
    total = sum(q.area for q in parts)
    if not parts or max(q.area for q in parts) < 0.9 * total:
        return None
    best = max(parts, key=lambda q: q.area)
    ring = normalize_geometry({"nails": [], "ignore": [[list(c) for c in best.exterior.coords]]})["ignore"][0]
    try:
        return ring if len(ring) >= 3 and LinearRing(ring).is_simple and Polygon(ring).area > 0 else None
    except ValueError:
        return None


def finish_geometry(nails: list[dict], ignore: list, warn=None, repair: bool = True) -> dict:
    """Normalised geometry dict (rounded to dataset.geometry.DECIMALS, duplicate vertices dropped).

    With ``repair``, polygons that touch or cross themselves are repaired with ``repair_ring``
    (each repair is a warning); the rest is left for ``validate_geometry`` to judge.
    """
    geometry = normalize_geometry({"nails": nails, "ignore": ignore})
    if repair:
        rings = [(f"nail {i + 1}", nail, "polygon") for i, nail in enumerate(geometry["nails"])]
        rings += [(f"ignore region {i + 1}", geometry["ignore"], i) for i in range(len(geometry["ignore"]))]
        for label, owner, key in rings:
            before = owner[key]
            fixed = repair_ring(before)
            if fixed is not None:
                owner[key] = fixed
                if warn:
                    warn(f"{label}: the polygon touched or crossed itself; repaired "
                         f"({len(before)} -> {len(fixed)} vertices, area {shoelace_area(before):g} -> "
                         f"{shoelace_area(fixed):g} px)")
    return geometry


class PendingNail:
    """A nail polygon waiting for its landmarks (LabelMe, CVAT)."""

    def __init__(self, polygon, finger, label: str, group=None, nail_id=None):
        self.polygon, self.finger, self.label, self.group, self.id = polygon, finger, label, group, nail_id
        self.base = self.tip = None
        self._shape = None

    def shape(self):
        if self._shape is None:
            from shapely.geometry import Polygon
            try:
                shape = Polygon(self.polygon)
                self._shape = shape if shape.is_valid else shape.buffer(0)
            except (ValueError, TypeError):
                self._shape = False
        return self._shape


def assign_landmarks(nails: list[PendingNail], landmarks: list[tuple], warn, reach: float = 4.0) -> None:
    """Give each landmark ``(kind, owner_label, [x, y], group)`` to one nail.

    Candidates: nails of ``owner_label`` when given, narrowed to the landmark's
    group when some candidates share it. The nail whose polygon contains the point
    wins (several: the smallest); otherwise the nearest within ``reach`` pixels.
    A second base (tip) for one nail keeps the first; a nail left with only one of
    base / tip loses it. Every such case is a warning.
    """
    from shapely.geometry import Point
    for kind, owner, point, group in landmarks:
        candidates = [n for n in nails if owner is None or normalize_label(n.label) == owner]
        if group is not None and any(n.group == group for n in candidates):
            candidates = [n for n in candidates if n.group == group]
        where = Point(point)
        scored = []
        for nail in candidates:
            shape = nail.shape()
            if shape:
                scored.append((shape.distance(where), shape.area, nail))
        inside = [s for s in scored if s[0] == 0]
        near = sorted(inside, key=lambda s: s[1]) or sorted((s for s in scored if s[0] <= reach), key=lambda s: s[0])
        label = f"{kind} at ({point[0]:g}, {point[1]:g})"
        if not near:
            warn(f"{label} is not inside any nail polygon; skipped")
            continue
        nail = near[0][2]
        if getattr(nail, kind) is not None:
            warn(f"{label}: the nail already has a {kind}; the extra one was skipped")
            continue
        setattr(nail, kind, point)
    for nail in nails:
        if (nail.base is None) != (nail.tip is None):
            missing = "tip" if nail.tip is None else "base"
            warn(f"nail {nail.label!r} has no {missing}; its {'base' if missing == 'tip' else 'tip'} was dropped")
            nail.base = nail.tip = None


def nails_to_dicts(nails: list[PendingNail]) -> list[dict]:
    return [make_nail(n.polygon, n.finger, n.base, n.tip, n.id) for n in nails]


# --------------------------------------------------------------------------- files and archives

MAX_ARCHIVE_BYTES = 8 * 1024 ** 3      # total uncompressed size
MAX_ARCHIVE_MEMBERS = 200_000
MAX_COMPRESSION_RATIO = 1000           # for members over 1 MiB


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def walk_files(root: str, suffixes: tuple[str, ...]) -> list[str]:
    """Files under ``root`` with one of ``suffixes`` (lower case), sorted; hidden files and __MACOSX skipped."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
        found += [os.path.join(folder, f) for f in files if not _is_hidden(f) and f.lower().endswith(suffixes)]
    return sorted(found)


class ImageFinder:
    """Locate an image file named in an annotation file: next to it, in images/, or a unique match below root.
    Only files that really lie below root count: a symbolic link to elsewhere is never followed."""

    def __init__(self, root: str):
        self.root = root
        self._real_root = os.path.realpath(root)
        self._index: dict[str, list[str]] | None = None

    def _is_file_inside(self, path: str) -> bool:
        return os.path.isfile(path) and os.path.commonpath([self._real_root, os.path.realpath(path)]) == self._real_root

    def find(self, file_name: str, near: str, extra: tuple[str, ...] = ()) -> str | None:
        rel = file_name.replace("\\", "/").lstrip("/")
        parts = [p for p in rel.split("/") if p not in ("", ".", "..")]
        if not parts:
            return None
        base = parts[-1]
        parent = os.path.dirname(os.path.abspath(near))
        root = os.path.abspath(self.root)
        inside = os.path.commonpath([root, parent]) == root
        for folder in dict.fromkeys((near, *((parent,) if inside else ()), self.root)):
            for candidate in (os.path.join(folder, *parts), os.path.join(folder, base),
                              os.path.join(folder, "images", base), *(os.path.join(folder, e, base) for e in extra)):
                if self._is_file_inside(candidate):
                    return os.path.abspath(candidate)
        if self._index is None:
            self._index = {}
            for path in filter(self._is_file_inside, walk_files(self.root, ("",))):
                self._index.setdefault(os.path.basename(path), []).append(path)
        matches = self._index.get(base, [])
        return os.path.abspath(matches[0]) if len(matches) == 1 else None


def read_json(path: str):
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise FormatError(f"{os.path.basename(path)} is not readable JSON: {exc}") from None


def safe_extract(zip_path, target_dir, *, max_total_size: int = MAX_ARCHIVE_BYTES,
                 max_members: int = MAX_ARCHIVE_MEMBERS, max_ratio: float = MAX_COMPRESSION_RATIO) -> list[str]:
    """Unpack a zip archive into ``target_dir``, refusing anything unsafe; returns the files written.

    Every member is checked before anything is written: absolute names (``/x``,
    ``C:x``, ``\\\\x``), ``..`` components, backslash paths, symbolic links and
    other non-regular files, encrypted members, duplicate names, and names that
    resolve outside ``target_dir`` (e.g. through an existing link) raise
    ``UnsafeArchiveError``; so do more than ``max_members`` members, a declared
    total size over ``max_total_size`` and a member compressed more than
    ``max_ratio`` times (zip bombs). While unpacking, the bytes actually written
    are counted against ``max_total_size`` too (declared sizes can lie). On any
    error the files written so far are removed.
    """
    target = os.path.realpath(os.fspath(target_dir))
    os.makedirs(target, exist_ok=True)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FormatError(f"not a readable zip archive: {exc}") from None
    written: list[str] = []
    with archive:
        infos = archive.infolist()
        if len(infos) > max_members:
            raise UnsafeArchiveError(f"archive has {len(infos)} members (max {max_members})")
        plan, seen, total = [], set(), 0
        for info in infos:
            name = info.filename
            if "\x00" in name or "\\" in name:
                raise UnsafeArchiveError(f"archive member {name!r} has a backslash or NUL in its name")
            if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
                raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if ".." in parts:
                raise UnsafeArchiveError(f"archive member {name!r} points outside the archive folder ('..')")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"archive member {name!r} is a symbolic link")
            is_dir = info.is_dir()
            if mode and stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeArchiveError(f"archive member {name!r} is not a regular file")
            if info.flag_bits & 0x1:
                raise UnsafeArchiveError(f"archive member {name!r} is encrypted")
            if not parts:
                continue
            dest = os.path.realpath(os.path.join(target, *parts))
            if os.path.commonpath([target, dest]) != target or dest == target:
                raise UnsafeArchiveError(f"archive member {name!r} resolves outside the target folder")
            key = "/".join(parts)
            if key in seen:
                raise UnsafeArchiveError(f"archive member {name!r} appears twice")
            seen.add(key)
            total += info.file_size
            if total > max_total_size:
                raise UnsafeArchiveError(f"archive unpacks to more than {max_total_size} bytes")
            if info.file_size > CHUNK and info.file_size > max_ratio * max(info.compress_size, 1):
                raise UnsafeArchiveError(f"archive member {name!r} is compressed {info.file_size // max(info.compress_size, 1)}x "
                                         f"(max {max_ratio:g}x): refusing a likely zip bomb")
            plan.append((info, dest, is_dir))
        done = 0
        try:
            for info, dest, is_dir in plan:
                if is_dir:
                    os.makedirs(dest, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if os.path.islink(dest) or os.path.isdir(dest):
                    raise UnsafeArchiveError(f"archive member {info.filename!r} would replace a link or folder")
                with archive.open(info) as src, open(dest, "wb") as out:
                    written.append(dest)
                    while chunk := src.read(CHUNK):
                        done += len(chunk)
                        if done > max_total_size:
                            raise UnsafeArchiveError(f"archive unpacks to more than {max_total_size} bytes")
                        out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
            for path in written:
                _remove(path)
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"cannot unpack the archive: {exc}") from None
    return written


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
