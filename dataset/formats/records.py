"""What flows through a conversion: ExportRecord (one image out), ImportedImage / ImportedDataset (labels in),
the ImportCollector importers build a dataset with, and the checks exporters run on meta and records.

Plain Python; this package must never import Django.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .errors import FormatError
from .naming import picture_name, stem_of

SPLITS = ("train", "val", "test")


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


class ImportCollector:
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
